// The memory store's reads: get, contains, and get_batch, which overlaps the cache misses of
// neighbouring keys (see get_batch below).
#include <algorithm>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "cache/expiry.hpp"
#include "cache/memory/memory_shard.hpp"
#include "cache/memory/memory_store.hpp"

namespace hetcache::cache {
namespace {

// Keys between get_batch's stages: the prefetches of one stage have this many keys' work to arrive
// before the next stage reads them. 4 already lets a random-row copy loop on this kind of machine
// stream rows at read bandwidth (bench/results/memory-batched-2026-12-02.md).
constexpr std::size_t kAhead = 4;
// The most of a row prefetched ahead of its copy; the hardware prefetcher follows longer rows.
constexpr std::size_t kRowPrefetchBytes = 4096;
constexpr std::size_t kLineBytes = 64;

}  // namespace

MemoryStore::Lookup MemoryStore::read_slot(const Shard& shard, std::uint32_t slot, float* out,
                                           std::int64_t now_ms) const {
  if (is_expired(shard.slots[slot].expiry_ms, now_ms)) return Lookup::Expired;
  shard.copy_row(slot, out, dim_);
  shard.mark_referenced(slot);
  return Lookup::Hit;
}

MemoryStore::Lookup MemoryStore::get(std::string_view key, float* out, std::int64_t now_ms) const {
  const std::uint64_t hash = hash_key(key);
  const Shard& shard = shards_[shard_index(hash)];
  std::shared_lock lock(shard.mutex);
  const std::uint32_t slot = shard.find(hash, key);
  return slot == SlotIndex::kNone ? Lookup::Miss : read_slot(shard, slot, out, now_ms);
}

bool MemoryStore::contains(std::string_view key, std::int64_t now_ms) const {
  const std::uint64_t hash = hash_key(key);
  const Shard& shard = shards_[shard_index(hash)];
  std::shared_lock lock(shard.mutex);
  const std::uint32_t slot = shard.find(hash, key);
  return slot != SlotIndex::kNone && !is_expired(shard.slots[slot].expiry_ms, now_ms);
}

void MemoryStore::get_batch(std::span<const std::string_view> keys, float* out, std::size_t stride,
                            std::int64_t now_ms, Lookup* results) const {
  if (keys.size() <= shard_detail::kUngroupedBatch) {
    for (std::size_t i = 0; i < keys.size(); ++i)
      results[i] = get(keys[i], out + i * stride, now_ms);
    return;
  }
  std::vector<std::uint32_t> starts;
  std::vector<std::uint64_t> hashes;
  const std::vector<std::uint32_t> order = order_by_shard(keys, starts, hashes);
  const std::size_t n = keys.size();
  const auto shard_at = [&](std::size_t p) { return shard_index(hashes[order[p]]); };
  // Position p of `order` goes through three stages, at steps p, p + kAhead and p + 2 kAhead:
  //   1. lock its shard (shared) if not yet, prefetch its index line;
  //   2. probe the line for a candidate slot, prefetch the slot and the row;
  //   3. compare the key, check the expiry, copy the row; unlock the shard after its last key.
  // Shards are locked in ascending order (the keys are in shard order) and each is held only from
  // its first key's stage 1 to its last key's stage 3, so writers wait no longer than before and
  // there is no cycle with other readers (visit_locked also locks in ascending order).
  std::vector<std::uint32_t> candidate(n, SlotIndex::kNone);
  std::vector<std::shared_lock<ShardLock>> locks(shard_count_);
  const std::size_t row_prefetch = std::min(stored_row_bytes_, kRowPrefetchBytes);
  for (std::size_t step = 0; step < n + 2 * kAhead; ++step) {
    if (step < n) {
      const std::size_t s = shard_at(step);
      if (!locks[s].owns_lock()) locks[s] = std::shared_lock(shards_[s].mutex);
      if (const void* line = shards_[s].index.line_of(hashes[order[step]])) {
        __builtin_prefetch(line);
      }
    }
    if (step >= kAhead && step - kAhead < n) {
      const std::size_t p = step - kAhead;
      const Shard& shard = shards_[shard_at(p)];
      const std::uint32_t slot = shard.index.first_match(hashes[order[p]]);
      candidate[p] = slot;
      if (slot != SlotIndex::kNone) {
        // The record may straddle two lines: the key is near its start, the expiry near its end.
        const char* record = reinterpret_cast<const char*>(&shard.slots[slot]);
        __builtin_prefetch(record);
        __builtin_prefetch(record + sizeof(Shard::Slot) - 1);
        const char* row = static_cast<const char*>(shard.row_address(slot));
        for (std::size_t b = 0; b < row_prefetch; b += kLineBytes) __builtin_prefetch(row + b);
      }
    }
    if (step >= 2 * kAhead) {
      const std::size_t p = step - 2 * kAhead;
      const std::uint32_t i = order[p];
      const std::size_t s = shard_at(p);
      const Shard& shard = shards_[s];
      std::uint32_t slot = candidate[p];
      // Another key with the same tag came first in the probe: look again, comparing keys.
      if (slot != SlotIndex::kNone && shard.slots[slot].key != keys[i]) {
        slot = shard.find(hashes[i], keys[i]);
      }
      results[i] = slot == SlotIndex::kNone ? Lookup::Miss
                                            : read_slot(shard, slot, out + i * stride, now_ms);
      if (p + 1 == n || shard_at(p + 1) != s) locks[s].unlock();
    }
  }
}

}  // namespace hetcache::cache
