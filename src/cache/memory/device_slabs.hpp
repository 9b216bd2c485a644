// Private: the memory store's rows mirrored on the GPU, so search() over the cache runs there
// (CacheOptions::search_on_gpu).
//
// The mirror lays every shard's slabs end to end in one device set. A search takes every shard's
// lock shared, re-uploads the slabs whose version moved since the mirror last saw them (or all of
// them when a shard gained or lost slabs), and runs one device-resident top-k. Rows not handed out
// yet and removed rows hold NaN, so they rank after every live row; expired rows are real vectors,
// so the search asks for k + (expired rows) hits, and asks again for k + (every row that is not
// live) in the rare case NaN scores among live rows let dead rows in ahead of them.
#pragma once

#include <hetcache/cache.hpp>
#include <hetcache/similarity.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "cache/memory/memory_store.hpp"
#include "compute/gpu/gpu_tier.hpp"

namespace hetcache::cache {

class DeviceSlabs {
 public:
  DeviceSlabs(gpu::GpuTier& tier, Precision precision) : tier_(tier), precision_(precision) {}

  // Top-k over the live rows, ordered as MemoryStore::search orders them. nullopt: the device ran
  // out of memory (the caller searches on the CPU). Other GPU failures throw Error(GpuError).
  std::optional<std::vector<std::vector<KeyHit>>> search(const MemoryStore& store,
                                                         MatrixView queries, std::size_t k,
                                                         Metric metric, std::int64_t now_ms);

  std::uint64_t slab_uploads() const;

 private:
  // Brings the mirror up to date with the locked shards; returns the first device row of each
  // shard and, last, the total.
  std::vector<std::size_t> sync(const MemoryStore::LockedShards& shards);

  gpu::GpuTier& tier_;
  const Precision precision_;
  mutable std::mutex mutex_;  // one search brings the mirror up to date at a time
  std::shared_ptr<detail::DeviceRows> device_;
  std::vector<std::vector<std::uint64_t>> versions_;  // per shard and slab, as uploaded
  std::uint64_t slab_uploads_ = 0;
};

}  // namespace hetcache::cache
