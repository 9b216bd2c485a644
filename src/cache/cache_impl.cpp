// The cache's state built (options checked, stores opened) and its one read path and one write
// path: reads try the memory store, then the prefetch set, then the durable store; writes go to the
// durable store first, then the memory store. Every tier runs these (embedding_cache_tiers.cpp);
// nothing here chooses a tier.
#include "cache/cache_impl.hpp"

namespace hetcache {
namespace {

std::shared_ptr<Resources> resources_of(const CacheOptions& o) {
  if (o.resources && o.scheduler.resources && o.resources != o.scheduler.resources) {
    throw Error(ErrorCode::InvalidArgument,
                "CacheOptions.resources and CacheOptions.scheduler.resources name different "
                "Resources; set one");
  }
  if (o.resources) return o.resources;
  return o.scheduler.resources ? o.scheduler.resources : Resources::shared();
}
SchedulerConfig scheduler_config(SchedulerConfig config, std::shared_ptr<Resources> resources) {
  config.resources = std::move(resources);
  return config;
}

}  // namespace

EmbeddingCache::Impl::Impl(CacheOptions opts)
    : options(std::move(opts)),
      resources(resources_of(options)),
      scheduler(scheduler_config(options.scheduler, resources)),
      memory(options.dim, options.max_bytes, options.max_entries, scheduler.engine().isa(),
             options.memory_storage) {
  if (!(options.min_healthy_hit_rate >= 0.0 && options.min_healthy_hit_rate <= 1.0)) {
    throw Error(ErrorCode::InvalidArgument, "min_healthy_hit_rate must be in [0, 1], got " +
                                                std::to_string(options.min_healthy_hit_rate));
  }
  if (options.durable && options.redis) {
    throw Error(ErrorCode::InvalidArgument,
                "set one durable store: CacheOptions.durable (RocksDB) or CacheOptions.redis");
  }
  if (options.durable) {
    durable = std::make_unique<cache::RocksDbStore>(*options.durable, options.dim,
                                                    options.durable_storage);
    follower = options.durable->mode == OpenMode::Follower;
  }
  if (options.redis) {
    durable =
        std::make_unique<cache::RedisStore>(*options.redis, options.dim, options.durable_storage);
    degrade = options.redis->degrade_to_memory;
  }
  if (options.enable_prefetching) {
    if (!durable) {
      throw Error(ErrorCode::InvalidArgument,
                  "enable_prefetching needs a durable store to load ahead from "
                  "(set CacheOptions.durable or CacheOptions.redis)");
    }
    if (options.prefetch_cache_size == 0)
      throw Error(ErrorCode::InvalidArgument, "prefetch_cache_size must be >= 1");
    prefetch = std::make_unique<cache::Prefetcher>(options.dim, options.prefetch_cache_size);
  }
  check_storage_options();
  if (options.search_on_gpu) {
    if (gpu::GpuTier* gpu = resources->core().available_gpu())
      device_slabs = std::make_unique<cache::DeviceSlabs>(*gpu, options.scheduler.gpu_precision);
  }
  small_get_tier = scheduler::rule_tier(options.scheduler, false, {},
                                        work(OpKind::Get, OpKind::GetBatch, 1), nullptr);
  small_put_tier = scheduler::rule_tier(options.scheduler, false, {},
                                        work(OpKind::Put, OpKind::PutBatch, 1), nullptr);
}

std::vector<std::size_t> EmbeddingCache::Impl::read_memory_tier(
    std::span<const std::string_view> keys, MutableMatrixView out, std::uint8_t* mask,
    std::int64_t now, ReadCounts& c, bool track) {
  std::vector<cache::Lookup> found(keys.size());
  memory.get_batch(keys, out.data(), out.stride(), now, found.data());
  std::vector<std::size_t> absent = sort_lookups(found, {}, mask, c, /*from_prefetch=*/false);
  if (prefetch) {
    if (!absent.empty()) absent = read_prefetch_set(keys, absent, out, mask, now, c);
    if (track) track_reads(keys, absent);
  }
  return absent;
}

std::vector<std::size_t> EmbeddingCache::Impl::sort_lookups(std::span<const cache::Lookup> found,
                                                            std::span<const std::size_t> rows,
                                                            std::uint8_t* mask, ReadCounts& c,
                                                            bool from_prefetch) {
  std::vector<std::size_t> missed;
  for (std::size_t j = 0; j < found.size(); ++j) {
    const std::size_t row = rows.empty() ? j : rows[j];
    switch (found[j]) {
      case cache::Lookup::Hit:
        mask[row] = 1;
        ++c.memory_hits;
        if (from_prefetch) ++c.prefetch_hits;
        break;
      case cache::Lookup::Expired:
        ++c.expired;
        break;
      case cache::Lookup::Miss:
        missed.push_back(row);
        break;
    }
  }
  return missed;
}

void EmbeddingCache::Impl::read_durable(std::span<const std::string_view> keys,
                                        std::span<const std::size_t> rows, MutableMatrixView out,
                                        std::uint8_t* mask, std::int64_t now, ReadCounts& c,
                                        bool on_fiber) {
  std::vector<std::string_view> absent_keys;
  absent_keys.reserve(rows.size());
  for (const auto i : rows) absent_keys.push_back(keys[i]);
  const std::vector<std::uint64_t> versions = stripes.snapshot(absent_keys);
  Matrix loaded(rows.size(), options.dim);
  cache::DurableStore::BatchRead result;
  if (!durable_call_or_degrade([&] {
        if (on_fiber) {
          durable
              ->get_batch_async(*resources, absent_keys, loaded.data(), loaded.stride(), now,
                                result)
              .get();
        } else {
          durable->get_batch(absent_keys, loaded.data(), loaded.stride(), now, result);
        }
      })) {
    result.reset(rows.size());  // memory only: every absent key is a miss
  }
  take_durable_read(keys, rows, loaded, result, out, mask, now, c, [&](std::size_t j, auto&& put) {
    stripes.cache_if_unwritten(absent_keys[j], versions[j], put);
  });
}

std::vector<std::uint8_t> EmbeddingCache::Impl::read(std::span<const std::string_view> keys,
                                                     MutableMatrixView out, bool count_it) {
  const std::int64_t now = now_unix_ms();
  std::vector<std::uint8_t> mask(keys.size(), 0);
  ReadCounts c;
  const std::vector<std::size_t> absent =
      read_memory_tier(keys, out, mask.data(), now, c, /*track=*/count_it);
  if (durable && !absent.empty()) read_durable(keys, absent, out, mask.data(), now, c, false);
  if (count_it) count(c, keys.size());
  return mask;
}

void EmbeddingCache::Impl::write(std::span<const std::string_view> keys, MatrixView values,
                                 std::int64_t expiry_ms, bool parallel) {
  // Stripes keep the memory and durable stores in agreement against read-throughs; without a
  // durable store there are none, and the memory store's shard locks suffice.
  cache::Stripes::Locks locks(stripes, durable ? cache::Stripes::mask(keys) : 0);
  write_held(keys, values, expiry_ms, parallel);
}

void EmbeddingCache::Impl::write_held(std::span<const std::string_view> keys, MatrixView values,
                                      std::int64_t expiry_ms, bool parallel) {
  const std::int64_t now = now_unix_ms();
  Matrix rounded;
  if (durable) {
    durable_call_or_degrade(
        [&] { durable->put_batch(keys, values.data(), values.stride(), expiry_ms); });
    values = as_durably_stored(values, rounded);
  }
  const auto put_memory = [&](std::size_t first, std::size_t n) {
    cache::MemoryStore::PutCounts evicted;
    memory.put_batch(keys.subspan(first, n), values.row(first), values.stride(), expiry_ms,
                     /*only_if_absent=*/false, now, evicted);
    add(counters.local().evictions, evicted.evicted_live);
    add(counters.local().expired_removed, evicted.evicted_expired);
  };
  if (parallel) {
    cache::arena_chunks(resources->core().arena, keys.size(), chunk_keys(), put_memory);
  } else {
    put_memory(0, keys.size());
  }
  if (prefetch) prefetch->set().overwrite_present(keys, values.data(), values.stride(), expiry_ms);
}

}  // namespace hetcache
