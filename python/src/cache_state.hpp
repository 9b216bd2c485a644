// What the cache's sync and async bindings share: the Python-side cache object, TTLs in seconds,
// the embed function adapter and the found mask.
#pragma once

#include <hetcache/cache.hpp>
#include <hetcache/scheduler.hpp>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "arrays.hpp"

namespace hetcache::python {

// The cache is held by a shared_ptr that every call copies while it holds the GIL, so close()
// never pulls a store from under a call in another thread (or an async call still running): the
// store closes when the last of them is done.
struct PyCache {
  std::shared_ptr<EmbeddingCache> cache;
  Ttl default_ttl;
  std::size_t dim = 0;
  std::shared_ptr<Scheduler> scheduler;  // search_database's, with the cache's strategy

  // Throws Error(InvalidArgument) after close().
  std::shared_ptr<EmbeddingCache> open() const;
};

// A TTL in seconds (None: `fallback`) as the C++ API's milliseconds; infinity: never.
Ttl ttl_of(std::optional<double> seconds, const Ttl& fallback);

// fn(missing_keys) -> rows, called with the GIL taken on whatever thread the cache runs it on.
EmbedFn embed_fn(nanobind::object fn, std::size_t dim);

// A value holding Python references (an object, an array over Python memory), released with the
// GIL taken wherever its last copy goes -- a pool thread included.
template <typename T>
std::shared_ptr<T> gil_safe(T value) {
  return std::shared_ptr<T>(new T(std::move(value)), [](T* p) {
    nanobind::gil_scoped_acquire gil;
    delete p;
  });
}

// The found mask as a numpy bool array over the vector's bytes.
nanobind::ndarray<nanobind::numpy, bool> mask_of(std::vector<std::uint8_t> found);

// The keys and rows of a write (put_batch, ingest, aput_batch), checked to match in number;
// `op` names the call in the error.
struct KeyedRows {
  std::vector<std::string> keys;
  InMatrix values;
};
KeyedRows keyed_rows(nanobind::handle keys, nanobind::handle vectors, const char* op);

void bind_cache_async(nanobind::class_<PyCache>& cls);  // cache_async_bindings.cpp

}  // namespace hetcache::python
