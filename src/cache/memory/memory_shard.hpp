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
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cache/memory/memory_store.hpp"
#include "cache/memory/shard_lock.hpp"
#include "cache/memory/slot_index.hpp"
#include "compute/cpu/compact_rows.hpp"
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
    bool live = false;                    // false: free
    mutable std::uint8_t referenced = 0;  // CLOCK's bit; shared readers set it through atomic_ref
  };

  mutable ShardLock mutex;  // readers shared, writers alone (shard_lock.hpp)
  SlotIndex index;
  std::vector<Slot> slots;  // slots.size() rows are in use or free; never shrinks until clear()
  // F32 storage: the rows and their |row|^2 (NaN: dead) per slab.
  std::vector<Matrix> slabs;
  std::vector<std::vector<float>> slab_norms;
  // Compact storage (F16, Bf16, I8): per slab, the codes with each row's |row|^2 and exact mode's
  // bounds (compute/cpu/compact_rows.hpp); compact_kernels encode and decode the rows.
  StorageType storage = StorageType::F32;
  const cpu::CompactKernelTable* compact_kernels = nullptr;
  std::vector<std::unique_ptr<detail::CompactRows>> compact_slabs;
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
  std::size_t slab_count() const { return slab_versions.size(); }
  bool compact() const { return storage != StorageType::F32; }

  // The first byte of the slot's stored row (for prefetching), and the row's stored bytes.
  const void* row_address(std::size_t slot) const {
    const std::size_t b = slab_of(slot), r = slot - slab_start(b);
    if (!compact()) return slabs[b].row(r);
    const detail::CompactRows& set = *compact_slabs[b];
    return set.codes.get() + r * set.stride * element_bytes(storage);
  }
  // The slot's row as f32 into out (compact storage: decoded).
  void copy_row(std::size_t slot, float* out, std::size_t dim) const {
    const std::size_t b = slab_of(slot), r = slot - slab_start(b);
    if (compact()) {
      const detail::CompactRows& set = *compact_slabs[b];
      compact_kernels->decode(set.codes.get() + r * set.stride * element_bytes(storage),
                              set.element_kind(), dim, set.scales.empty() ? 0.0f : set.scales[r],
                              out);
    } else {
      std::memcpy(out, slabs[b].row(r), dim * sizeof(float));
    }
  }
  // Stores `vector` in the slot's row with its squared norm (compact storage: encoded, with its
  // bounds).
  void write_row(std::size_t slot, const float* vector, std::size_t dim,
                 const cpu::KernelTable& kernels) {
    const std::size_t b = slab_of(slot), r = slot - slab_start(b);
    slab_versions[b] = ++writes;
    if (compact()) {
      float norm = 0.0f;
      kernels.squared_norms(cpu::Rows{vector, 1, dim, dim}, &norm);
      cpu::write_compact_row(*compact_kernels, *compact_slabs[b], r, vector, norm);
      return;
    }
    float* row = slabs[b].row(r);
    std::memcpy(row, vector, dim * sizeof(float));
    kernels.squared_norms(cpu::Rows{row, 1, dim, dim}, &slab_norms[b][r]);
  }
  void mark_dead(std::size_t slot) {
    const std::size_t b = slab_of(slot), r = slot - slab_start(b);
    slab_versions[b] = ++writes;
    if (compact()) {
      cpu::mark_compact_row_dead(*compact_slabs[b], r);
      return;
    }
    slabs[b].row(r)[0] = shard_detail::kDeadMarker;
    slab_norms[b][r] = shard_detail::kDeadMarker;
  }
  // A new slab's rows all start dead, so a scan of the whole slab (the device mirror's) ranks the
  // rows not handed out yet after every live one.
  void add_slab(std::size_t dim) {
    const std::size_t rows = slab_size(slab_count());
    if (compact()) {
      compact_slabs.push_back(cpu::make_dead_compact_rows(storage, rows, dim));
    } else {
      slabs.emplace_back(rows, dim);
      for (std::size_t r = 0; r < rows; ++r) slabs.back().row(r)[0] = shard_detail::kDeadMarker;
      slab_norms.emplace_back(rows, shard_detail::kDeadMarker);
    }
    slab_versions.push_back(++writes);
  }
  void clear_rows() {
    slabs.clear();
    slab_norms.clear();
    compact_slabs.clear();
    slab_versions.clear();
  }
};

}  // namespace hetcache::cache
