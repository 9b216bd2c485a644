// src/cache/memory: where vectors live in RAM -- the sharded, bounded memory store (this file:
// bounds, CLOCK eviction, writes; memory_store_get.cpp: reads; memory_shard.hpp: a shard;
// slot_index.hpp: a shard's key index; memory_store_search.cpp: search in place) and its device
// mirror (device_slabs.cpp). It runs on the tier it
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

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "cache/expiry.hpp"
#include "compute/cpu/compact_rows.hpp"
#include "compute/cpu/isa.hpp"
#include "compute/cpu/kernel_abi.hpp"

namespace hetcache::cache {
namespace {

constexpr std::size_t kFloatsPerRowAlignment = Matrix::kRowAlignmentBytes / sizeof(float);
constexpr std::size_t kMaxShards = 64;
constexpr std::size_t kMinEntriesPerShard = 128;

}  // namespace

MemoryStore::MemoryStore(std::size_t dim, std::size_t max_bytes, std::size_t max_entries, Isa isa,
                         StorageType storage)
    : dim_(dim),
      row_floats_((dim + kFloatsPerRowAlignment - 1) / kFloatsPerRowAlignment *
                  kFloatsPerRowAlignment),
      storage_(storage) {
  if (dim == 0) throw Error(ErrorCode::InvalidArgument, "cache dim must be > 0");
  kernels_ = &cpu::kernels_for(isa);
  if (storage == StorageType::F32) {
    stored_row_bytes_ = row_floats_ * sizeof(float);
    row_charge_ = stored_row_bytes_;
  } else {
    compact_kernels_ = &cpu::compact_kernels_for(isa, cpu::element_kind(storage), false, false);
    stored_row_bytes_ = detail::CompactRows::row_stride(storage, dim) * element_bytes(storage);
    row_charge_ = detail::CompactRows::row_bytes(storage, dim);
  }
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
    shard.storage = storage;
    shard.compact_kernels = compact_kernels_;
  }
}

MemoryStore::~MemoryStore() = default;

std::size_t MemoryStore::charge(std::size_t key_bytes) const noexcept {
  return row_charge_ + key_bytes + kEntryOverheadBytes;
}

std::uint64_t MemoryStore::hash_key(std::string_view key) noexcept {
  return XXH3_64bits(key.data(), key.size());
}

std::size_t MemoryStore::shard_index(std::uint64_t hash) const noexcept {
  return shard_count_ == 1 ? 0 : static_cast<std::size_t>(hash >> shard_shift_);
}

std::vector<std::uint32_t> MemoryStore::order_by_shard(std::span<const std::string_view> keys,
                                                       std::vector<std::uint32_t>& starts,
                                                       std::vector<std::uint64_t>& hashes) const {
  std::vector<std::uint32_t> shard_of(keys.size());
  hashes.resize(keys.size());
  starts.assign(shard_count_ + 1, 0);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    hashes[i] = hash_key(keys[i]);
    shard_of[i] = static_cast<std::uint32_t>(shard_index(hashes[i]));
    ++starts[shard_of[i] + 1];
  }
  for (std::size_t s = 0; s < shard_count_; ++s) starts[s + 1] += starts[s];
  std::vector<std::uint32_t> order(keys.size());
  std::vector<std::uint32_t> next(starts.begin(), starts.end() - 1);
  for (std::size_t i = 0; i < keys.size(); ++i)
    order[next[shard_of[i]]++] = static_cast<std::uint32_t>(i);
  return order;
}

void MemoryStore::put_batch(std::span<const std::string_view> keys, const float* rows,
                            std::size_t stride, std::int64_t expiry_ms, bool only_if_absent,
                            std::int64_t now_ms, PutCounts& counts) {
  if (keys.size() <= shard_detail::kUngroupedBatch) {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      put(keys[i], rows + i * stride, expiry_ms, only_if_absent, now_ms, counts);
    }
    return;
  }
  // Keys of one shard in their batch order, so a key given twice ends with its last value.
  std::vector<std::uint32_t> starts;
  std::vector<std::uint64_t> hashes;
  const std::vector<std::uint32_t> order = order_by_shard(keys, starts, hashes);
  for (std::size_t s = 0; s < shard_count_; ++s) {
    if (starts[s] == starts[s + 1]) continue;
    Shard& shard = shards_[s];
    std::unique_lock lock(shard.mutex);
    for (std::uint32_t j = starts[s]; j < starts[s + 1]; ++j) {
      const std::uint32_t i = order[j];
      put_locked(shard, hashes[i], keys[i], rows + i * stride, expiry_ms, only_if_absent, now_ms,
                 counts);
    }
  }
}

void MemoryStore::put(std::string_view key, const float* vector, std::int64_t expiry_ms,
                      bool only_if_absent, std::int64_t now_ms, PutCounts& counts) {
  const std::uint64_t hash = hash_key(key);
  Shard& shard = shards_[shard_index(hash)];
  std::unique_lock lock(shard.mutex);
  put_locked(shard, hash, key, vector, expiry_ms, only_if_absent, now_ms, counts);
}

void MemoryStore::put_locked(Shard& shard, std::uint64_t hash, std::string_view key,
                             const float* vector, std::int64_t expiry_ms, bool only_if_absent,
                             std::int64_t now_ms, PutCounts& counts) {
  if (const std::uint32_t slot = shard.find(hash, key); slot != SlotIndex::kNone) {
    if (only_if_absent) return;
    shard.write_row(slot, vector, dim_, *kernels_);
    shard.slots[slot].expiry_ms = expiry_ms;
    shard.slots[slot].referenced = 1;
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
      if (!candidate.live) continue;
      if (is_expired(candidate.expiry_ms, now_ms)) {
        evict(static_cast<std::uint32_t>(slot), true);
        break;
      }
      if (candidate.referenced != 0) {
        candidate.referenced = 0;
        continue;
      }
      evict(static_cast<std::uint32_t>(slot), false);
      break;
    }
  }

  // Everything that can fail (the key's copy, a larger index, a new slab) happens before the
  // entry is linked, so std::bad_alloc leaves the shard as it was.
  std::string owned_key(key);
  shard.index.reserve_one([&](std::uint32_t s) { return shard.hash_of(s); });
  std::uint32_t slot;
  if (!shard.free_slots.empty()) {
    slot = shard.free_slots.back();
    shard.free_slots.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(shard.slots.size());
    if (shard.slab_of(slot) == shard.slab_count()) shard.add_slab(dim_);
    shard.slots.emplace_back();
  }
  // New entries start unreferenced: one read gives them their second chance.
  shard.slots[slot] = Shard::Slot{std::move(owned_key), hash, expiry_ms, true, 0};
  shard.index.insert(hash, slot);
  shard.write_row(slot, vector, dim_, *kernels_);
  shard.bytes += needed;
}

bool MemoryStore::remove(std::string_view key) {
  const std::uint64_t hash = hash_key(key);
  Shard& shard = shards_[shard_index(hash)];
  std::unique_lock lock(shard.mutex);
  const std::uint32_t slot = shard.find(hash, key);
  if (slot == SlotIndex::kNone) return false;
  release_slot(shard, slot);
  return true;
}

void MemoryStore::release_slot(Shard& shard, std::uint32_t slot) {
  Shard::Slot& entry = shard.slots[slot];
  shard.bytes -= charge(entry.key.size());
  shard.index.erase(entry.hash, slot, [&](std::uint32_t s) { return shard.hash_of(s); });
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
    shard.clear_rows();
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
      if (!entry.live || !is_expired(entry.expiry_ms, now_ms)) continue;
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
