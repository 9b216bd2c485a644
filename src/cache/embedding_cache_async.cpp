// The async cache calls: fibers on the cache's Runtime, one per chunk of optimal_batch_size keys.
//
// No fiber blocks its thread here:
//  - memory-tier work (shard locks held for a copy, never across a wait) runs on the caller, so
//    a batch the memory tier answers needs no fiber at all;
//  - durable reads go through DurableStore::get_batch_async (RocksDB: the I/O pool; Redis: the
//    store's event loop) and the fiber waits on the future;
//  - a read-through must not hold its stripe lock while it waits (the fiber may resume on another
//    thread, and a std::shared_mutex must be unlocked by its owner), so it snapshots the stripe's
//    seqlock count before the read and caches the value only if no writer held or took the stripe
//    since; the stripe lock is then only tried, never waited for;
//  - writes to a durable tier hold stripe locks across the store call, so they run whole on the
//    I/O pool.
// No thread_local state is read across a suspension (the only one, the runtime's pool marker, is
// the same on every pool thread).
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <exception>
#include <vector>

#include "cache/cache_impl.hpp"

namespace hetcache {
namespace {

// Runs body(first, count) for each chunk: chunk 0 on this fiber, the others as fibers of their own;
// waits for all, then rethrows the first failure.
template <typename Body>
void for_each_chunk(Runtime& runtime, std::size_t n, std::size_t chunk, Body body) {
  std::vector<Future<void>> others;
  for (std::size_t first = chunk; first < n; first += chunk) {
    const std::size_t count = std::min(chunk, n - first);
    others.push_back(runtime.submit([&body, first, count] { body(first, count); }));
  }
  std::exception_ptr failure;
  try {
    body(0, std::min(chunk, n));
  } catch (...) {
    failure = std::current_exception();
  }
  for (auto& other : others) {
    try {
      other.get();
    } catch (...) {
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

std::vector<std::size_t> EmbeddingCache::Impl::read_memory(std::span<const std::string_view> keys,
                                                          MutableMatrixView out,
                                                          std::uint8_t* mask) {
  std::vector<cache::MemoryStore::Lookup> found(keys.size());
  memory.get_batch(keys, out.data(), out.stride(), now_unix_ms(), found.data());
  std::uint64_t hits = 0, expired = 0;
  std::vector<std::size_t> absent;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    switch (found[i]) {
      case cache::MemoryStore::Lookup::Hit:
        mask[i] = 1;
        ++hits;
        break;
      case cache::MemoryStore::Lookup::Expired:
        ++expired;
        break;
      case cache::MemoryStore::Lookup::Miss:
        absent.push_back(i);
        break;
    }
  }
  add(counters.memory_hits, hits);
  add(counters.hits, hits);
  add(counters.expired, expired);
  // Without a durable tier the absent keys are final misses; otherwise read_durable counts them.
  if (!durable) add(counters.misses, keys.size() - hits);
  else add(counters.misses, expired);
  return durable ? absent : std::vector<std::size_t>{};
}

void EmbeddingCache::Impl::read_durable_on_fiber(std::span<const std::string_view> keys,
                                                 std::span<const std::size_t> rows,
                                                 MutableMatrixView out, std::uint8_t* mask) {
  const std::int64_t now = now_unix_ms();
  std::vector<std::string_view> absent_keys;
  std::vector<std::uint64_t> versions;
  for (const auto i : rows) {
    absent_keys.push_back(keys[i]);
    versions.push_back(stripe_versions[stripe_of(keys[i])].load(std::memory_order_acquire));
  }
  Matrix loaded(rows.size(), options.dim);
  cache::DurableStore::BatchRead result;
  if (!durable_call_or_degrade([&] {
        durable->get_batch_async(*runtime, absent_keys, loaded.data(), loaded.stride(), now, result)
            .get();
      })) {
    result.reset(rows.size());
  }
  std::uint64_t hits = 0, expired = 0;
  cache::MemoryStore::PutCounts evicted;
  for (std::size_t j = 0; j < rows.size(); ++j) {
    using R = cache::DurableStore::ReadResult;
    switch (result.results[j]) {
      case R::Found: {
        std::memcpy(out.row(rows[j]), loaded.row(j), options.dim * sizeof(float));
        mask[rows[j]] = 1;
        ++hits;
        const std::size_t stripe = stripe_of(absent_keys[j]);
        if (versions[j] % 2 != 0) break;  // a writer held the stripe when we looked
        std::shared_lock lock(stripes[stripe], std::try_to_lock);
        if (lock.owns_lock() &&
            stripe_versions[stripe].load(std::memory_order_acquire) == versions[j]) {
          memory.put(absent_keys[j], loaded.row(j), result.expiry_ms[j], /*only_if_absent=*/true,
                     now, evicted);
        }
        break;
      }
      case R::Expired:
        ++expired;
        break;
      case R::Corrupt:
        note_corrupt(absent_keys[j], result.reasons[j]);
        break;
      case R::Missing:
        break;
    }
  }
  add(counters.evictions, evicted.evicted_live);
  add(counters.expired_removed, evicted.evicted_expired);
  add(counters.durable_hits, hits);
  add(counters.hits, hits);
  add(counters.misses, rows.size() - hits);
  add(counters.expired, expired);
}

Future<std::vector<std::uint8_t>> EmbeddingCache::get_batch_async(
    std::span<const std::string> keys, MutableMatrixView out) {
  Impl* const im = impl_.get();
  im->counters.get_batch_async_calls.fetch_add(1, std::memory_order_relaxed);
  im->check_matrix("out", out.rows(), out.dim(), keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) im->check_key(keys[i], i);
  // Memory hits are served here and now (shard locks held for a copy, never across a wait): a
  // batch that the memory tier answers completes without a fiber hop.
  std::vector<std::string_view> views(keys.begin(), keys.end());
  std::vector<std::uint8_t> mask(keys.size(), 0);
  std::vector<std::size_t> absent = im->read_memory(views, out, mask.data());
  if (absent.empty()) {
    Promise<std::vector<std::uint8_t>> ready;
    ready.set_value(std::move(mask));
    return ready.get_future();
  }
  // Misses go to the durable tier in chunks, as concurrent fibers.
  return im->runtime->submit([im, views = std::move(views), out, mask = std::move(mask),
                              absent = std::move(absent)]() mutable {
    const std::size_t chunk = im->durable->read_chunk_keys(im->options.optimal_batch_size);
    for_each_chunk(*im->runtime, absent.size(), chunk, [&](std::size_t first, std::size_t count) {
      im->read_durable_on_fiber(views, std::span(absent).subspan(first, count), out, mask.data());
    });
    return std::move(mask);
  });
}

Future<void> EmbeddingCache::put_batch_async(std::span<const std::string> keys, MatrixView values,
                                             Ttl ttl) {
  Impl* const im = impl_.get();
  im->counters.put_batch_async_calls.fetch_add(1, std::memory_order_relaxed);
  {
    const std::vector<std::string_view> views(keys.begin(), keys.end());
    im->validate_put(views, values);
  }
  const std::int64_t expiry_ms = expiry_for(ttl, now_unix_ms());
  return im->runtime->submit([im, keys, values, expiry_ms] {
    const std::vector<std::string_view> views(keys.begin(), keys.end());
    for_each_chunk(
        *im->runtime, views.size(), im->options.optimal_batch_size,
        [&](std::size_t first, std::size_t count) {
          const auto chunk_keys = std::span(views).subspan(first, count);
          const MatrixView chunk_values = values.slice(first, count);
          if (im->durable) {
            im->runtime->submit_io([&] { im->write(chunk_keys, chunk_values, expiry_ms); }).get();
          } else {
            im->write(chunk_keys, chunk_values, expiry_ms);
          }
        });
  });
}

Future<std::size_t> EmbeddingCache::get_or_compute_async(std::span<const std::string> keys,
                                                         MutableMatrixView out,
                                                         const EmbedFn& embed, Ttl ttl) {
  Impl* const im = impl_.get();
  im->counters.get_or_compute_async_calls.fetch_add(1, std::memory_order_relaxed);
  im->check_matrix("out", out.rows(), out.dim(), keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) im->check_storable(keys[i], i);
  expiry_for(ttl, now_unix_ms());  // validates the ttl now
  if (!embed) throw Error(ErrorCode::InvalidArgument, "get_or_compute: embed function is empty");
  return im->runtime->submit([im, keys, out, embed, ttl]() -> std::size_t {
    const std::vector<std::string_view> views(keys.begin(), keys.end());
    std::vector<cache::MemoryStore::Lookup> found(views.size());
    im->memory.get_batch(views, out.data(), out.stride(), now_unix_ms(), found.data());
    bool all_hit = true;
    for (const auto f : found) all_hit = all_hit && f == cache::MemoryStore::Lookup::Hit;
    if (all_hit) {
      add(im->counters.memory_hits, views.size());
      add(im->counters.hits, views.size());
      return 0;
    }
    return im->runtime->submit_io([&] { return im->get_or_compute(views, out, embed, ttl); }).get();
  });
}

}  // namespace hetcache
