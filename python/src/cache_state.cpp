#include "cache_state.hpp"

#include <hetcache/error.hpp>

#include <nanobind/stl/string.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <span>
#include <string>
#include <utility>

namespace hetcache::python {
namespace nb = nanobind;

std::shared_ptr<EmbeddingCache> PyCache::open() const {
  if (!cache) throw Error(ErrorCode::InvalidArgument, "the cache is closed");
  return cache;
}

Ttl ttl_of(std::optional<double> seconds, const Ttl& fallback) {
  if (!seconds) return fallback;
  const double s = *seconds;
  if (std::isnan(s) || s <= 0)
    throw Error(ErrorCode::InvalidArgument,
                "ttl = " + std::to_string(s) + ": a time to live is a number of seconds > 0");
  if (s >= 9.2e15) return std::chrono::milliseconds::max();
  return std::chrono::milliseconds(std::max<std::int64_t>(1, std::llround(s * 1000.0)));
}

EmbedFn embed_fn(nb::object fn, std::size_t dim) {
  std::shared_ptr<nb::object> held = gil_safe(std::move(fn));
  return [held, dim](std::span<const std::string> missing) -> Matrix {
    nb::gil_scoped_acquire gil;
    nb::list keys;
    for (const std::string& k : missing) keys.append(nb::str(k.data(), k.size()));
    nb::object result = (*held)(keys);
    const InMatrix rows = as_matrix(result, "get_or_compute: fn(missing_keys)");
    if (rows.shape(0) != missing.size() || rows.shape(1) != dim)
      throw Error(ErrorCode::DimensionMismatch,
                  "get_or_compute: fn returned " + std::to_string(rows.shape(0)) + " x " +
                      std::to_string(rows.shape(1)) + " for " + std::to_string(missing.size()) +
                      " missing keys of dimension " + std::to_string(dim));
    return Matrix::copy_of(view_of(rows));
  };
}

nb::ndarray<nb::numpy, bool> mask_of(std::vector<std::uint8_t> found) {
  const std::size_t n = found.size();
  static_assert(sizeof(bool) == sizeof(std::uint8_t));
  auto* data = reinterpret_cast<bool*>(found.data());
  static bool none = false;
  return numpy_owning(std::move(found), n == 0 ? &none : data, {n});
}

KeyedRows keyed_rows(nb::handle keys, nb::handle vectors, const char* op) {
  KeyedRows w{keys_of(keys, "keys"), as_matrix(vectors, "vectors")};
  if (w.values.shape(0) != w.keys.size())
    throw Error(ErrorCode::InvalidArgument, std::string(op) + ": " + std::to_string(w.keys.size()) +
                                                " keys but " + std::to_string(w.values.shape(0)) +
                                                " rows of values");
  return w;
}

}  // namespace hetcache::python
