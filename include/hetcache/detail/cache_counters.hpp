#pragma once
// Not API: the list of the cache's counters, declared once. CacheStats has one std::uint64_t field
// per entry (cache.hpp), the cache one relaxed atomic per entry, and stats() copies them all; a
// counter added here appears in all three. X(name) is called once per counter, in this order.
//
//   hits               keys found (memory or durable)
//   memory_hits        ... of which from memory (memory store or prefetch set)
//   durable_hits       ... of which read through from the durable store
//   misses             keys not found anywhere (expired and corrupt included)
//   expired            lookups that found an expired entry
//   expired_removed    entries dropped by cleanup_expired / eviction
//   evictions          live entries evicted to respect the bounds
//   corrupt_reads      durable values that failed their checks
//   durable_errors     durable-store calls that failed
//   degraded_calls     calls served memory-only because Redis failed
//   prefetch_hits      (prefetching on) key lookups served by the prefetch set
//   prefetch_misses    (prefetching on) every other key lookup
//   prefetch_loads     keys loaded into the prefetch set (by the loader or warm)
//   gpu_searches       searches the GPU answered (search_on_gpu)
//   bulk_ingests       ingest_batch calls written as table files (RocksDbOptions::bulk_ingest_rows)
//   rescored_keys      (compact memory store, exact search) f32 values read from the durable store
//                      to re-score the rows the compact scores could not rule out
//   *_calls            calls of each public operation; embed_calls: calls of the embed function,
//                      embedded_keys: keys it computed

#define HETCACHE_CACHE_COUNTERS(X)                                                                 \
  X(hits)                                                                                          \
  X(memory_hits) X(durable_hits) X(misses) X(expired) X(expired_removed) X(evictions)              \
      X(corrupt_reads) X(durable_errors) X(degraded_calls) X(prefetch_hits) X(prefetch_misses)     \
          X(prefetch_loads) X(gpu_searches) X(get_calls) X(get_batch_calls) X(put_calls)           \
              X(put_batch_calls) X(remove_calls) X(search_calls) X(similarity_calls)               \
                  X(get_or_compute_calls) X(embed_calls) X(embedded_keys) X(get_batch_async_calls) \
                      X(put_batch_async_calls) X(get_or_compute_async_calls) X(warm_calls)         \
                          X(ingest_batch_calls) X(bulk_ingests) X(rescored_keys)
