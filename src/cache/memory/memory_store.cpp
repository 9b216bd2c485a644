// src/cache/memory: where vectors live in RAM -- the sharded, bounded memory store (this file:
// bounds, CLOCK eviction, reads and writes; memory_shard.hpp: a shard; memory_store_search.cpp:
// search in place) and its device mirror (device_slabs.cpp). It runs on the tier it
// is given (search: the calling thread or the Resources' arena) and includes no scheduler or
// durable-store code.
#include "cache/memory/memory_store.hpp"
#include "cache/memory/memory_shard.hpp"

#include <hetcache/error.hpp>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "cache/expiry.hpp"
#include "compute/cpu/isa.hpp"
#include "compute/cpu/kernel_abi.hpp"

namespace hetcache::cache {
namespace {

constexpr std::size_t kFloatsPerRowAlignment = Matrix::kRowAlignmentBytes / sizeof(float);
constexpr std::size_t kMaxShards = 64;
constexpr std::size_t kMinEntriesPerShard = 128;
// Batches up to this size lock per key instead of grouping keys by shard first.
constexpr std::size_t kUngroupedBatch = 4;

}  // namespace

MemoryStore::MemoryStore(std::size_t dim, std::size_t max_bytes, std::size_t max_entries,
                         Isa isa)
    : dim_(dim),
      row_floats_((dim + kFloatsPerRowAlignment - 1) / kFloatsPerRowAlignment *
                  kFloatsPerRowAlignment) {
  if (dim == 0) throw Error(ErrorCode::InvalidArgument, "cache dim must be > 0");
  kernels_ = &cpu::kernels_for(isa);
  if (dim > (std::size_t{1} << 24)) {
    throw Error(ErrorCode::InvalidArgument,
                "cache dim " + std::to_string(dim) + " is larger than the supported 16777216");
  }
  const std::size_t smallest_charge = charge(1);
  std::size_t entries = max_bytes / smallest_charge;
  if (max_entries != 0) entries = std::min(entries, max_entries);
  if (entries == 0) {
    throw Error(ErrorCode::InvalidArgument,
                "cache bounds hold no entry: max_bytes " + std::to_string(max_bytes) +
                    " is less than the " + std::to_string(smallest_charge) +
                    " bytes one entry of dim " + std::to_string(dim) + " needs");
  }
  shard_count_ = std::clamp<std::size_t>(
      std::bit_floor(std::max<std::size_t>(1, entries / kMinEntriesPerShard)), 1, kMaxShards);
  shard_shift_ = 64 - static_cast<unsigned>(std::countr_zero(shard_count_));
  shards_ = std::make_unique<Shard[]>(shard_count_);
  capacity_entries_ = entries;
  capacity_bytes_ = max_bytes;
  min_shard_bytes_ = max_bytes / shard_count_;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    Shard& shard = shards_[i];
    shard.max_entries = entries / shard_count_ + (i < entries % shard_count_ ? 1 : 0);
    shard.max_bytes = max_bytes / shard_count_ + (i < max_bytes % shard_count_ ? 1 : 0);
    shard.set_slab_sizes(shard.max_entries);
  }
}

MemoryStore::~MemoryStore() = default;

std::size_t MemoryStore::charge(std::size_t key_bytes) const noexcept {
  return row_floats_ * sizeof(float) + key_bytes + kEntryOverheadBytes;
}

std::size_t MemoryStore::shard_index(std::string_view key) const noexcept {
  if (shard_count_ == 1) return 0;
  // The top bits of XXH3 pick the shard; the map inside uses std::hash, so the two are independent.
  return XXH3_64bits(key.data(), key.size()) >> shard_shift_;
}

MemoryStore::Shard& MemoryStore::shard_for(std::string_view key) const noexcept {
  return shards_[shard_index(key)];
}

std::vector<std::uint32_t> MemoryStore::order_by_shard(std::span<const std::string_view> keys,
                                                       std::vector<std::uint32_t>& starts) const {
  std::vector<std::uint32_t> shard_of(keys.size());
  starts.assign(shard_count_ + 1, 0);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    shard_of[i] = static_cast<std::uint32_t>(shard_index(keys[i]));
    ++starts[shard_of[i] + 1];
  }
  for (std::size_t s = 0; s < shard_count_; ++s) starts[s + 1] += starts[s];
  std::vector<std::uint32_t> order(keys.size());
  std::vector<std::uint32_t> next(starts.begin(), starts.end() - 1);
  for (std::size_t i = 0; i < keys.size(); ++i)
    order[next[shard_of[i]]++] = static_cast<std::uint32_t>(i);
  return order;
}

MemoryStore::Lookup MemoryStore::get(std::string_view key, float* out, std::int64_t now_ms) const {
  const Shard& shard = shard_for(key);
  std::shared_lock lock(shard.mutex);
  return get_locked(shard, key, out, now_ms);
}

void MemoryStore::get_batch(std::span<const std::string_view> keys, float* out, std::size_t stride,
                            std::int64_t now_ms, Lookup* results) const {
  // One shared lock per shard per batch rather than per key: far fewer atomic operations on the
  // lock words that concurrent readers share. Tiny batches skip the grouping (it allocates).
  if (keys.size() <= kUngroupedBatch) {
    for (std::size_t i = 0; i < keys.size(); ++i)
      results[i] = get(keys[i], out + i * stride, now_ms);
    return;
  }
  std::vector<std::uint32_t> starts;
  const std::vector<std::uint32_t> order = order_by_shard(keys, starts);
  for (std::size_t s = 0; s < shard_count_; ++s) {
    if (starts[s] == starts[s + 1]) continue;
    const Shard& shard = shards_[s];
    std::shared_lock lock(shard.mutex);
    for (std::uint32_t j = starts[s]; j < starts[s + 1]; ++j) {
      const std::uint32_t i = order[j];
      results[i] = get_locked(shard, keys[i], out + i * stride, now_ms);
    }
  }
}

void MemoryStore::put_batch(std::span<const std::string_view> keys, const float* rows,
                            std::size_t stride, std::int64_t expiry_ms, bool only_if_absent,
                            std::int64_t now_ms, PutCounts& counts) {
  if (keys.size() <= kUngroupedBatch) {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      put(keys[i], rows + i * stride, expiry_ms, only_if_absent, now_ms, counts);
    }
    return;
  }
  // Keys of one shard in their batch order, so a key given twice ends with its last value.
  std::vector<std::uint32_t> starts;
  const std::vector<std::uint32_t> order = order_by_shard(keys, starts);
  for (std::size_t s = 0; s < shard_count_; ++s) {
    if (starts[s] == starts[s + 1]) continue;
    Shard& shard = shards_[s];
    std::unique_lock lock(shard.mutex);
    for (std::uint32_t j = starts[s]; j < starts[s + 1]; ++j) {
      const std::uint32_t i = order[j];
      put_locked(shard, keys[i], rows + i * stride, expiry_ms, only_if_absent, now_ms, counts);
    }
  }
}

MemoryStore::Lookup MemoryStore::get_locked(const Shard& shard, std::string_view key, float* out,
                                            std::int64_t now_ms) const {
  const auto it = shard.index.find(key);
  if (it == shard.index.end()) return Lookup::Miss;
  const Shard::Entry& entry = it->second;
  if (is_expired(entry.expiry_ms, now_ms)) return Lookup::Expired;
  std::memcpy(out, shard.row(entry.slot), dim_ * sizeof(float));
  // Only write the bit when it is clear, so hot keys read by many threads keep the line shared.
  auto& referenced = entry.referenced;
  if (referenced.load(std::memory_order_relaxed) == 0) {
    referenced.store(1, std::memory_order_relaxed);
  }
  return Lookup::Hit;
}

bool MemoryStore::contains(std::string_view key, std::int64_t now_ms) const {
  const Shard& shard = shard_for(key);
  std::shared_lock lock(shard.mutex);
  const auto it = shard.index.find(key);
  return it != shard.index.end() && !is_expired(it->second.expiry_ms, now_ms);
}

void MemoryStore::put(std::string_view key, const float* vector, std::int64_t expiry_ms,
                      bool only_if_absent, std::int64_t now_ms, PutCounts& counts) {
  Shard& shard = shard_for(key);
  std::unique_lock lock(shard.mutex);
  put_locked(shard, key, vector, expiry_ms, only_if_absent, now_ms, counts);
}

void MemoryStore::put_locked(Shard& shard, std::string_view key, const float* vector,
                             std::int64_t expiry_ms, bool only_if_absent, std::int64_t now_ms,
                             PutCounts& counts) {
  if (const auto it = shard.index.find(key); it != shard.index.end()) {
    if (only_if_absent) return;
    Shard::Entry& entry = it->second;
    shard.write_row(entry.slot, vector, dim_, *kernels_);
    entry.expiry_ms = expiry_ms;
    shard.slots[entry.slot].expiry_ms = expiry_ms;
    entry.referenced.store(1, std::memory_order_relaxed);
    return;
  }

  const std::size_t needed = charge(key.size());
  // Evict until the new entry fits both bounds. The caller guaranteed needed <= max_bytes, so an
  // empty shard always has room; two full sweeps always find a victim (bits cleared on the first).
  const auto evict = [&](std::uint32_t slot, bool was_expired) {
    release_slot(shard, slot);
    if (was_expired) {
      ++counts.evicted_expired;
    } else {
      ++counts.evicted_live;
    }
  };
  while (shard.index.size() >= shard.max_entries || shard.bytes + needed > shard.max_bytes) {
    const std::size_t n = shard.slots.size();
    for (std::size_t step = 0; step < 2 * n + 1; ++step) {
      const std::size_t slot = shard.clock_hand;
      shard.clock_hand = (shard.clock_hand + 1) % n;
      Shard::Slot& candidate = shard.slots[slot];
      if (candidate.node == nullptr) continue;
      if (is_expired(candidate.expiry_ms, now_ms)) {
        evict(static_cast<std::uint32_t>(slot), true);
        break;
      }
      auto& referenced = candidate.node->second.referenced;
      if (referenced.load(std::memory_order_relaxed) != 0) {
        referenced.store(0, std::memory_order_relaxed);
        continue;
      }
      evict(static_cast<std::uint32_t>(slot), false);
      break;
    }
  }

  std::uint32_t slot;
  if (!shard.free_slots.empty()) {
    slot = shard.free_slots.back();
    shard.free_slots.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(shard.slots.size());
    if (shard.slab_of(slot) == shard.slabs.size()) shard.add_slab(dim_);
    shard.slots.emplace_back();
  }
  // New entries start unreferenced: one read gives them their second chance.
  const auto [node, inserted] = shard.index.try_emplace(std::string(key));
  node->second.slot = slot;
  node->second.expiry_ms = expiry_ms;
  shard.slots[slot] = Shard::Slot{&*node, expiry_ms};
  shard.write_row(slot, vector, dim_, *kernels_);
  shard.bytes += needed;
}

bool MemoryStore::remove(std::string_view key) {
  Shard& shard = shard_for(key);
  std::unique_lock lock(shard.mutex);
  const auto it = shard.index.find(key);
  if (it == shard.index.end()) return false;
  release_slot(shard, it->second.slot);
  return true;
}

void MemoryStore::release_slot(Shard& shard, std::uint32_t slot) {
  Shard::Slot& entry = shard.slots[slot];
  shard.bytes -= charge(entry.node->first.size());
  // Erase by iterator: erasing by a reference to the node's own key would read a destroyed key.
  shard.index.erase(shard.index.find(std::string_view(entry.node->first)));
  entry = Shard::Slot{};
  shard.mark_dead(slot);
  shard.free_slots.push_back(slot);
}

void MemoryStore::clear() {
  for (std::size_t i = 0; i < shard_count_; ++i) {
    Shard& shard = shards_[i];
    std::unique_lock lock(shard.mutex);
    shard.index.clear();
    shard.slots.clear();
    shard.slabs.clear();
    shard.slab_norms.clear();
    shard.slab_versions.clear();
    shard.free_slots.clear();
    shard.bytes = 0;
    shard.clock_hand = 0;
  }
}

std::size_t MemoryStore::cleanup_expired(std::int64_t now_ms) {
  std::size_t removed = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    Shard& shard = shards_[i];
    std::unique_lock lock(shard.mutex);
    for (std::size_t slot = 0; slot < shard.slots.size(); ++slot) {
      const Shard::Slot& entry = shard.slots[slot];
      if (entry.node == nullptr || !is_expired(entry.expiry_ms, now_ms)) continue;
      release_slot(shard, static_cast<std::uint32_t>(slot));
      ++removed;
    }
  }
  return removed;
}

std::size_t MemoryStore::entries() const {
  std::size_t total = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::shared_lock lock(shards_[i].mutex);
    total += shards_[i].index.size();
  }
  return total;
}

std::size_t MemoryStore::bytes() const {
  std::size_t total = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::shared_lock lock(shards_[i].mutex);
    total += shards_[i].bytes;
  }
  return total;
}

}  // namespace hetcache::cache
