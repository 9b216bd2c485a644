// The async cache calls: fibers on the cache's Runtime, one per chunk of optimal_batch_size keys.
//
// No fiber blocks its thread here:
//  - memory-tier work (shard locks held for a copy, never across a wait) runs on the caller, so
//    a batch the memory tier answers needs no fiber at all;
//  - durable reads go through DurableStore::get_batch_async (RocksDB: the I/O pool; Redis: the
//    store's event loop) and the fiber waits on the future;
//  - a read-through holds no lock while it waits (Impl::stripe_snapshot / cache_if_unwritten);
//  - writes to a durable tier hold stripe locks across the store call, so they run whole on the
//    I/O pool.
// No thread_local state is read across a suspension (the only one, the runtime's pool marker, is
// the same on every pool thread).
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <vector>

#include "cache/cache_impl.hpp"

namespace hetcache {
void EmbeddingCache::Impl::read_durable_on_fiber(std::span<const std::string_view> keys,
                                                 std::span<const std::size_t> rows,
                                                 MutableMatrixView out, std::uint8_t* mask) {
  const std::int64_t now = now_unix_ms();
  std::vector<std::string_view> absent_keys;
  for (const auto i : rows) absent_keys.push_back(keys[i]);
  const std::vector<std::uint64_t> versions = stripe_snapshot(absent_keys);
  Matrix loaded(rows.size(), options.dim);
  cache::DurableStore::BatchRead result;
  if (!durable_call_or_degrade([&] {
        durable->get_batch_async(*runtime, absent_keys, loaded.data(), loaded.stride(), now, result)
            .get();
      })) {
    result.reset(rows.size());
  }
  ReadCounts c;
  take_durable_read(keys, rows, loaded, result, out, mask, now, c, [&](std::size_t j, auto&& put) {
    cache_if_unwritten(absent_keys[j], versions[j], put);
  });
  count(c, rows.size());
}

Future<std::vector<std::uint8_t>> EmbeddingCache::get_batch_async(std::span<const std::string> keys,
                                                                  MutableMatrixView out) {
  Impl* const im = impl_.get();
  im->counters.get_batch_async_calls.fetch_add(1, std::memory_order_relaxed);
  std::vector<std::string_view> views(keys.begin(), keys.end());
  im->validate_get(views, out);
  // Memory hits are served here and now (shard locks held for a copy, never across a wait): a
  // batch that the memory tier answers completes without a fiber hop.
  std::vector<std::uint8_t> mask(keys.size(), 0);
  Impl::ReadCounts c;
  std::vector<std::size_t> absent = im->read_memory_tier(views, out, mask.data(), now_unix_ms(), c);
  if (!im->durable) absent.clear();  // final misses
  im->count(c, views.size() - absent.size());
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
  std::vector<std::string_view> views(keys.begin(), keys.end());
  im->validate_put(views, values);
  const std::int64_t expiry_ms = expiry_for(ttl, now_unix_ms());
  return im->runtime->submit([im, views = std::move(views), values, expiry_ms] {
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
  std::vector<std::string_view> views(keys.begin(), keys.end());
  const std::int64_t expiry_ms = im->validate_get_or_compute(views, out, embed, ttl);
  return im->runtime->submit([im, views = std::move(views), out, embed, expiry_ms] {
    // Everything in memory: answered on this fiber, counted here. Otherwise get_or_compute reads
    // (and counts) again, with its durable reads and embed on the I/O pool.
    std::vector<std::uint8_t> mask(views.size(), 0);
    Impl::ReadCounts c;
    im->read_memory_tier(views, out, mask.data(), now_unix_ms(), c, /*track=*/false);
    if (c.memory_hits == views.size()) {
      if (im->prefetch) im->track_reads(views, {});
      im->count(c, views.size());
      return std::size_t{0};
    }
    return im->runtime->submit_io([&] { return im->get_or_compute(views, out, embed, expiry_ms); })
        .get();
  });
}

}  // namespace hetcache
