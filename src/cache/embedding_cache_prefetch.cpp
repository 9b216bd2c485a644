// Prefetching (see prefetcher.hpp): the prefetch set on the read path, frequency tracking, the
// background loader and warm().
//
// The loader and warm() run as fibers and read through DurableStore::get_batch_async, so they never
// block a fiber thread. Like a read-through, a load must not undo a write that raced it
// (Stripes::cache_if_unwritten). Writes keep resident keys current themselves (Impl::write
// overwrites them, remove erases them).
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <memory>
#include <vector>

#include "cache/cache_impl.hpp"

namespace hetcache {

std::vector<std::size_t> EmbeddingCache::Impl::read_prefetch_set(
    std::span<const std::string_view> keys, std::span<const std::size_t> absent,
    MutableMatrixView out, std::uint8_t* mask, std::int64_t now, ReadCounts& c) {
  std::vector<cache::Lookup> found(absent.size());
  prefetch->set().lookup(keys, absent, out.data(), out.stride(), now, found.data());
  return sort_lookups(found, absent, mask, c, /*from_prefetch=*/true);
}

void EmbeddingCache::Impl::track_reads(std::span<const std::string_view> keys,
                                       std::span<const std::size_t> absent) {
  prefetch->record(keys, absent,
                   [this] { return resources->submit([this] { drain_prefetch_queue(); }); });
}

void EmbeddingCache::Impl::drain_prefetch_queue() {
  const std::size_t chunk = durable->read_chunk_keys(chunk_keys());
  for (;;) {
    const std::vector<std::string> batch = prefetch->take(chunk);
    if (batch.empty()) return;
    const std::vector<std::string_view> views(batch.begin(), batch.end());
    try {
      load_ahead(views, /*force=*/false);
    } catch (const std::exception& e) {
      // Background work has no caller to tell: count it, log the first failure, keep going (the
      // gets that queued these keys were served, or failed, on their own).
      if (!prefetch_failure_logged.exchange(true)) {
        log(std::string("prefetching failed (") + e.what() +
            "); further prefetch failures are counted in durable_errors, not logged");
      }
    }
  }
}

std::size_t EmbeddingCache::Impl::load_ahead(std::span<const std::string_view> keys, bool force) {
  const std::int64_t now = now_unix_ms();
  const std::vector<std::uint64_t> versions = stripes.snapshot(keys);
  Matrix loaded(keys.size(), options.dim);
  cache::DurableStore::BatchRead result;
  durable_call([&] {
    durable->get_batch_async(*resources, keys, loaded.data(), loaded.stride(), now, result).get();
  });
  std::size_t resident = 0;
  for (std::size_t j = 0; j < keys.size(); ++j) {
    if (result.results[j] != cache::DurableStore::ReadResult::Found) continue;
    stripes.cache_if_unwritten(keys[j], versions[j], [&] {
      if (prefetch->set().admit(keys[j], cache::Prefetcher::hash(keys[j]), loaded.row(j),
                                result.expiry_ms[j], now, prefetch->sketch(), force))
        ++resident;
    });
  }
  add(counters.local().prefetch_loads, resident);
  return resident;
}

Future<std::size_t> EmbeddingCache::warm(std::span<const std::string> keys) {
  Impl* const im = impl_.get();
  im->counters.local().warm_calls.fetch_add(1, std::memory_order_relaxed);
  im->follow();
  if (!im->prefetch) {
    throw Error(ErrorCode::InvalidArgument,
                "warm needs enable_prefetching (and a durable store to load from)");
  }
  for (std::size_t i = 0; i < keys.size(); ++i) im->check_key(keys[i], i);
  // Warmed keys count as asked for a few times, so the first newcomer does not displace them.
  for (const auto& key : keys)
    im->prefetch->sketch().add(cache::Prefetcher::hash(key), cache::Prefetcher::kWarmWeight);
  auto owned = std::make_shared<const std::vector<std::string>>(keys.begin(), keys.end());
  return im->resources->submit([im, owned] {
    const std::vector<std::string_view> views(owned->begin(), owned->end());
    std::atomic<std::size_t> resident{0};
    for_each_chunk(*im->resources, views.size(), im->durable->read_chunk_keys(im->chunk_keys()),
                   [&](std::size_t first, std::size_t count) {
                     resident += im->load_ahead(std::span(views).subspan(first, count), true);
                   });
    return resident.load();
  });
}

}  // namespace hetcache
