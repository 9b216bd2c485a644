// Private: the memory store — a sharded key -> slot index over 64-byte aligned slabs of rows,
// bounded in entries and bytes, evicting with CLOCK.
//
// Each shard owns a fixed share of both bounds (as RocksDB's sharded block cache does), its own
// slots and slabs, and one reader-writer lock (shard_lock.hpp: readers share it without writing a
// common line, writers hold it only for an index update and one row copy). There is no lock over
// the whole store.
//
// CLOCK (second chance): a read sets the entry's reference bit (an atomic, so readers stay shared);
// when a shard must make room, its hand sweeps the slots, clearing set bits and evicting the first
// slot whose bit is clear. Expired entries are evicted first when the hand meets them. Overwriting
// a key reuses its slot, so it never evicts another key.
//
// Every row keeps its squared norm beside it (per slab, computed under the shard's write lock when
// the row is written, with the ISA the cache's engine searches with), so a Cosine or L2 search
// reads the norm instead of computing it: scores are bit-identical to searching the rows alone.
//
// A dead row (free, removed, evicted) holds NaN in its first float, so every metric scores it NaN
// and it ranks after every live row; search asks the kernels for k + (dead or expired rows) hits
// per slab and drops the dead ones, which gives the exact top-k over live rows.
//
// Compact storage (F16, Bf16, I8; compact.hpp) keeps each slab as compact rows with their norms
// and exact mode's bounds (compute/cpu/compact_rows.hpp): a read decodes the row, search ranks by
// the compact scores, and survivors() gives exact mode's candidates for the caller to re-score
// from f32 values it reads elsewhere (the durable store).
#pragma once

#include <hetcache/cache.hpp>
#include <hetcache/compact.hpp>
#include <hetcache/matrix.hpp>
#include <hetcache/similarity.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cache/expiry.hpp"

namespace hetcache::cpu {
struct KernelTable;
struct CompactKernelTable;
}  // namespace hetcache::cpu

namespace hetcache::cache {

class MemoryStore {
 public:
  // Index entries (8 bytes each, the table a quarter to half full), the slot record, the row's
  // norm and a free-list place: charged per entry on top of its row and key.
  static constexpr std::size_t kEntryOverheadBytes = 100;

  // Throws Error(InvalidArgument) when the bounds cannot hold a single entry. `isa` computes the
  // rows' norms; give the one the store's searches run with (SimilarityEngine::isa()). `storage`:
  // how rows are kept (F32 as given; else compact, see above).
  MemoryStore(std::size_t dim, std::size_t max_bytes, std::size_t max_entries,
              Isa isa = default_isa(), StorageType storage = StorageType::F32);
  ~MemoryStore();
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  std::size_t dim() const noexcept { return dim_; }
  // The kernels of the store's ISA (the engine's), resolved once at construction.
  const cpu::KernelTable& kernels() const noexcept { return *kernels_; }
  StorageType storage() const noexcept { return storage_; }
  std::size_t capacity_entries() const noexcept { return capacity_entries_; }
  std::size_t capacity_bytes() const noexcept { return capacity_bytes_; }
  std::size_t shard_count() const noexcept { return shard_count_; }
  // Bytes an entry with this key is charged, and the most one shard can hold.
  std::size_t charge(std::size_t key_bytes) const noexcept;
  std::size_t max_charge() const noexcept { return min_shard_bytes_; }

  using Lookup = cache::Lookup;
  Lookup get(std::string_view key, float* out, std::int64_t now_ms) const;
  bool contains(std::string_view key, std::int64_t now_ms) const;

  struct PutCounts {
    std::size_t evicted_live = 0;
    std::size_t evicted_expired = 0;
  };
  // Inserts or overwrites (only_if_absent: leaves an existing entry alone). The caller has checked
  // charge(key.size()) <= max_charge(). Never throws except std::bad_alloc.
  void put(std::string_view key, const float* vector, std::int64_t expiry_ms, bool only_if_absent,
           std::int64_t now_ms, PutCounts& counts);
  // Batch forms: one lock per shard per batch. Row i lives at base + i * stride. get_batch works
  // through the keys in shard order in three stages a few keys apart (prefetch the key's index
  // line; probe it and prefetch the slot and the row; compare the key and copy the row), so the
  // cache misses of neighbouring keys overlap instead of following one another.
  void get_batch(std::span<const std::string_view> keys, float* out, std::size_t stride,
                 std::int64_t now_ms, Lookup* results) const;
  void put_batch(std::span<const std::string_view> keys, const float* rows, std::size_t stride,
                 std::int64_t expiry_ms, bool only_if_absent, std::int64_t now_ms,
                 PutCounts& counts);
  bool remove(std::string_view key);
  void clear();
  std::size_t cleanup_expired(std::int64_t now_ms);

  std::size_t entries() const;
  std::size_t bytes() const;

  // Top-k over the live rows of every shard, each slab searched by the engine on the calling
  // thread, merged in shard order (ties by key), so results are reproducible. tier Cpu: shards
  // run in parallel in the engine's Resources arena; Sequential: one after another here.
  // Compact storage: ranked by the compact scores (ScoreMode::Fast).
  std::vector<std::vector<KeyHit>> search(const SimilarityEngine& engine, MatrixView queries,
                                          std::size_t k, Metric metric, std::int64_t now_ms,
                                          Tier tier) const;
  // A live row whose f32 key lies within key +- slack (key: the score, negated for L2, so larger
  // is better; NaN when unknown).
  struct BoundedHit {
    std::string key;
    float rank_key;
    float slack;
  };
  // Compact storage, exact mode's first stage: per query, every live row that may be in the f32
  // top-k (a superset, each slab's own; the cache narrows it across slabs). Tiers as search.
  // Error(InvalidArgument) on F32 storage.
  std::vector<std::vector<BoundedHit>> survivors(const SimilarityEngine& engine, MatrixView queries,
                                                 std::size_t k, Metric metric, std::int64_t now_ms,
                                                 Tier tier) const;

  // Every shard's rows at once, for the device mirror (device_slabs.hpp).
  struct SlabRows {
    MatrixView rows;                       // the whole slab; rows not handed out yet are dead
    std::span<const float> squared_norms;  // of every row of the slab (NaN for a dead row)
    std::size_t first_slot;  // the shard's slot of its first row (slabs grow: 16, 16, 32, ...)
    std::uint64_t version;   // moves whenever one of the slab's rows changes
  };
  enum class RowState { Live, Expired, Dead };
  class LockedShards {
   public:
    std::size_t shards() const noexcept { return slabs_.size(); }
    std::span<const SlabRows> slabs(std::size_t shard) const { return slabs_[shard]; }
    RowState state(std::size_t shard, std::size_t row) const;
    const std::string& key(std::size_t shard, std::size_t row) const;  // for a live row

   private:
    friend class MemoryStore;
    const MemoryStore* store_ = nullptr;
    std::int64_t now_ms_ = 0;
    std::vector<std::vector<SlabRows>> slabs_;
  };
  // Runs visit with every shard shared-locked (writers wait until it returns). F32 storage only
  // (Error(Unsupported) otherwise).
  void visit_locked(std::int64_t now_ms,
                    const std::function<void(const LockedShards&)>& visit) const;

 private:
  struct Shard;
  // A key's XXH3 hash: its top bits pick the shard, its low bits the index position, its high
  // half is the index tag.
  static std::uint64_t hash_key(std::string_view key) noexcept;
  std::size_t shard_index(std::uint64_t hash) const noexcept;
  // Batch positions grouped by shard: shard s owns order[starts[s] .. starts[s + 1]). Fills
  // hashes[i] with hash_key(keys[i]).
  std::vector<std::uint32_t> order_by_shard(std::span<const std::string_view> keys,
                                            std::vector<std::uint32_t>& starts,
                                            std::vector<std::uint64_t>& hashes) const;
  // The rest of a hit whose slot the index named: expiry check, row copy, CLOCK's bit.
  Lookup read_slot(const Shard& shard, std::uint32_t slot, float* out, std::int64_t now_ms) const;
  // Frees a live slot: index entry erased, row marked dead, slot on the free list.
  void release_slot(Shard& shard, std::uint32_t slot);
  // Runs fn(shard index) for every shard: here one after another (Sequential), or in parallel in
  // the engine's arena (Cpu).
  void for_each_shard(const SimilarityEngine& engine, Tier tier,
                      const std::function<void(std::size_t)>& fn) const;
  // Under the shard's shared lock, calls per_slab(shard, slab, rows in use, rows not live,
  // live_slot) for each slab holding a live row; live_slot(slab-local id) is the slot of a live
  // row, or null.
  template <typename PerSlab>
  void for_each_slab(std::size_t shard, std::int64_t now_ms, const PerSlab& per_slab) const;
  void put_locked(Shard& shard, std::uint64_t hash, std::string_view key, const float* vector,
                  std::int64_t expiry_ms, bool only_if_absent, std::int64_t now_ms,
                  PutCounts& counts);

  std::size_t dim_;
  std::size_t row_floats_;  // dim rounded up to 16
  StorageType storage_;
  std::size_t stored_row_bytes_;  // a row as kept in a slab (F32: row_floats_ floats)
  std::size_t row_charge_;        // a row's bytes with its per-row data
  std::size_t capacity_entries_ = 0;
  std::size_t capacity_bytes_ = 0;
  std::size_t min_shard_bytes_ = 0;
  std::size_t shard_count_ = 1;
  unsigned shard_shift_ = 64;
  std::unique_ptr<Shard[]> shards_;
  const cpu::KernelTable* kernels_;                           // computes the rows' squared norms
  const cpu::CompactKernelTable* compact_kernels_ = nullptr;  // encodes / decodes compact rows
};

}  // namespace hetcache::cache
