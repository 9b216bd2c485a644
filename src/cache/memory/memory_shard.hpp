// Private to src/cache/memory: one shard of the memory store (memory_store.hpp) -- its index, its
// slots and its slabs of rows with their norms -- shared by the store's write path
// (memory_store.cpp) and its search (memory_store_search.cpp).
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "cache/memory/memory_store.hpp"
#include "cache/memory/shard_lock.hpp"
#include "cache/memory/slot_index.hpp"
#include "compute/cpu/kernel_abi.hpp"

namespace hetcache::cache {
namespace shard_detail {

// A shard's slabs grow 16, 16, 32, 64, ... rows up to 4096, then stay at 4096: a fresh or small
// cache allocates (and zeroes) only about what it holds. Both are powers of two.
inline constexpr std::size_t kFirstSlabRows = 16;
inline constexpr std::size_t kMaxSlabRows = 4096;
inline constexpr float kDeadMarker = std::numeric_limits<float>::quiet_NaN();
// Batches up to this size lock per key instead of grouping keys by shard first (which allocates).
inline constexpr std::size_t kUngroupedBatch = 4;

}  // namespace shard_detail

struct alignas(64) MemoryStore::Shard {
  // A slot holds what a lookup compares and checks after the index (slot_index.hpp) names it:
  // the key, its hash (for the index to move the entry), the expiry and CLOCK's bit. Search and
  // cleanup scan slots sequentially.
  struct Slot {
    std::string key;
    std::uint64_t hash = 0;
    std::int64_t expiry_ms = 0;
    bool live = false;                     // false: free
    mutable std::uint8_t referenced = 0;  // CLOCK's bit; shared readers set it through atomic_ref
  };

  mutable ShardLock mutex;  // readers shared, writers alone (shard_lock.hpp)
  SlotIndex index;
  std::vector<Slot> slots;  // slots.size() rows are in use or free; never shrinks until clear()
  std::vector<Matrix> slabs;
  std::vector<std::vector<float>> slab_norms;  // |row|^2 per row of each slab (NaN: dead)
  // Per slab, the value of `writes` when one of its rows last changed: the device mirror
  // (device_slabs.hpp) re-uploads a slab whose version moved. `writes` never goes back, not even
  // in clear(), so a version is never reused.
  std::vector<std::uint64_t> slab_versions;
  std::uint64_t writes = 0;
  std::vector<std::uint32_t> free_slots;
  std::size_t max_entries = 0;
  std::size_t max_bytes = 0;
  // Slab sizes: first_slab_rows, first_slab_rows, 2x, 4x, ... up to max_slab_rows (both powers of
  // two), then max_slab_rows each. Slots are numbered through the slabs in order.
  std::size_t first_slab_rows = 0;
  std::size_t max_slab_rows = 0;
  unsigned growth_steps = 0;  // log2(max_slab_rows / first_slab_rows)
  std::size_t bytes = 0;
  std::size_t clock_hand = 0;

  // The slot holding `key` (whose hash is `hash`), or SlotIndex::kNone.
  std::uint32_t find(std::uint64_t hash, std::string_view key) const {
    return index.find(hash, [&](std::uint32_t slot) { return slots[slot].key == key; });
  }
  std::uint64_t hash_of(std::uint32_t slot) const { return slots[slot].hash; }
  // Sets CLOCK's bit for a read under the shared lock; only writes when it is clear, so hot keys
  // read by many threads keep the line shared.
  void mark_referenced(std::uint32_t slot) const {
    std::atomic_ref<std::uint8_t> bit(slots[slot].referenced);
    if (bit.load(std::memory_order_relaxed) == 0) bit.store(1, std::memory_order_relaxed);
  }

  void set_slab_sizes(std::size_t max_entries_in_shard) {
    max_slab_rows = std::bit_ceil(std::min(max_entries_in_shard, shard_detail::kMaxSlabRows));
    first_slab_rows = std::min(shard_detail::kFirstSlabRows, max_slab_rows);
    growth_steps = static_cast<unsigned>(std::countr_zero(max_slab_rows / first_slab_rows));
  }
  std::size_t slab_of(std::size_t slot) const {
    if (slot >= max_slab_rows) return slot / max_slab_rows + growth_steps;
    return slot < first_slab_rows ? 0 : std::bit_width(slot / first_slab_rows);
  }
  std::size_t slab_start(std::size_t slab) const {
    if (slab > growth_steps) return (slab - growth_steps) * max_slab_rows;
    return slab == 0 ? 0 : first_slab_rows << (slab - 1);
  }
  std::size_t slab_size(std::size_t slab) const { return slab_start(slab + 1) - slab_start(slab); }
  const float* row(std::size_t slot) const {
    const std::size_t b = slab_of(slot);
    return slabs[b].row(slot - slab_start(b));
  }
  // A row about to change.
  float* row_for_write(std::size_t slot) {
    const std::size_t b = slab_of(slot);
    slab_versions[b] = ++writes;
    return slabs[b].row(slot - slab_start(b));
  }
  float& norm_of(std::size_t slot) {
    const std::size_t b = slab_of(slot);
    return slab_norms[b][slot - slab_start(b)];
  }
  // Copies `vector` into the slot's row and keeps its squared norm.
  void write_row(std::size_t slot, const float* vector, std::size_t dim,
                 const cpu::KernelTable& kernels) {
    float* row = row_for_write(slot);
    std::memcpy(row, vector, dim * sizeof(float));
    kernels.squared_norms(cpu::Rows{row, 1, dim, dim}, &norm_of(slot));
  }
  void mark_dead(std::size_t slot) {
    row_for_write(slot)[0] = shard_detail::kDeadMarker;
    norm_of(slot) = shard_detail::kDeadMarker;
  }
  // A new slab's rows all start dead, so a scan of the whole slab (the device mirror's) ranks the
  // rows not handed out yet after every live one.
  void add_slab(std::size_t dim) {
    const std::size_t rows = slab_size(slabs.size());
    slabs.emplace_back(rows, dim);
    for (std::size_t r = 0; r < rows; ++r) slabs.back().row(r)[0] = shard_detail::kDeadMarker;
    slab_norms.emplace_back(rows, shard_detail::kDeadMarker);
    slab_versions.push_back(++writes);
  }
};

}  // namespace hetcache::cache
