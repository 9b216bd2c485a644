#include "cache/memory_store.hpp"

#include <hetcache/error.hpp>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace hetcache::cache {
namespace {

constexpr std::size_t kFloatsPerRowAlignment = Matrix::kRowAlignmentBytes / sizeof(float);
constexpr std::size_t kMaxShards = 64;
constexpr std::size_t kMinEntriesPerShard = 128;
constexpr std::size_t kMaxSlabRows = 4096;
// Multiply-adds below which a cache search runs on the calling thread (the engine's own rule).
constexpr std::size_t kParallelSearchWork = std::size_t{1} << 22;
constexpr float kDeadMarker = std::numeric_limits<float>::quiet_NaN();

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

bool expired(std::int64_t expiry_ms, std::int64_t now_ms) noexcept { return expiry_ms <= now_ms; }

// Better-first order of search hits: larger (Dot, Cosine) or smaller (L2) scores first, NaN last,
// equal scores by key.
bool hit_before(const KeyHit& a, const KeyHit& b, Metric metric) noexcept {
  const bool a_nan = std::isnan(a.score), b_nan = std::isnan(b.score);
  if (a_nan != b_nan) return b_nan;
  if (!a_nan && a.score != b.score) {
    return metric == Metric::L2 ? a.score < b.score : a.score > b.score;
  }
  return a.key < b.key;
}

}  // namespace

struct alignas(64) MemoryStore::Shard {
  struct Slot {
    std::string key;
    std::int64_t expiry_ms = 0;
    bool live = false;
  };
  struct Slab {
    Matrix rows;
    std::unique_ptr<std::atomic<std::uint8_t>[]> referenced;
  };

  mutable std::shared_mutex mutex;
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> index;
  std::vector<Slot> slots;  // slots.size() rows are in use or free; never shrinks until clear()
  std::vector<Slab> slabs;
  std::vector<std::uint32_t> free_slots;
  std::size_t max_entries = 0;
  std::size_t max_bytes = 0;
  std::size_t slab_rows = 0;
  std::size_t bytes = 0;
  std::size_t clock_hand = 0;

  float* row(std::size_t slot) { return slabs[slot / slab_rows].rows.row(slot % slab_rows); }
  const float* row(std::size_t slot) const {
    return slabs[slot / slab_rows].rows.row(slot % slab_rows);
  }
  std::atomic<std::uint8_t>& referenced(std::size_t slot) const {
    return slabs[slot / slab_rows].referenced[slot % slab_rows];
  }
};

MemoryStore::MemoryStore(std::size_t dim, std::size_t max_bytes, std::size_t max_entries)
    : dim_(dim),
      row_floats_((dim + kFloatsPerRowAlignment - 1) / kFloatsPerRowAlignment *
                  kFloatsPerRowAlignment) {
  if (dim == 0) throw Error(ErrorCode::InvalidArgument, "cache dim must be > 0");
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
    shard.slab_rows = std::min(shard.max_entries, kMaxSlabRows);
  }
}

MemoryStore::~MemoryStore() = default;

std::size_t MemoryStore::charge(std::size_t key_bytes) const noexcept {
  // The key is held twice: in the slot (for eviction) and in the index.
  return row_floats_ * sizeof(float) + 2 * key_bytes + kEntryOverheadBytes;
}

MemoryStore::Shard& MemoryStore::shard_for(std::string_view key) const noexcept {
  if (shard_count_ == 1) return shards_[0];
  // The top bits of XXH3 pick the shard; the map inside uses std::hash, so the two are independent.
  return shards_[XXH3_64bits(key.data(), key.size()) >> shard_shift_];
}

MemoryStore::Lookup MemoryStore::get(std::string_view key, float* out, std::int64_t now_ms) const {
  const Shard& shard = shard_for(key);
  std::shared_lock lock(shard.mutex);
  const auto it = shard.index.find(key);
  if (it == shard.index.end()) return Lookup::Miss;
  const auto slot = it->second;
  if (expired(shard.slots[slot].expiry_ms, now_ms)) return Lookup::Expired;
  std::memcpy(out, shard.row(slot), dim_ * sizeof(float));
  // Only write the bit when it is clear, so hot keys read by many threads keep the line shared.
  auto& referenced = shard.referenced(slot);
  if (referenced.load(std::memory_order_relaxed) == 0) {
    referenced.store(1, std::memory_order_relaxed);
  }
  return Lookup::Hit;
}

bool MemoryStore::contains(std::string_view key, std::int64_t now_ms) const {
  const Shard& shard = shard_for(key);
  std::shared_lock lock(shard.mutex);
  const auto it = shard.index.find(key);
  return it != shard.index.end() && !expired(shard.slots[it->second].expiry_ms, now_ms);
}

void MemoryStore::put(std::string_view key, const float* vector, std::int64_t expiry_ms,
                      bool only_if_absent, std::int64_t now_ms, PutCounts& counts) {
  Shard& shard = shard_for(key);
  std::unique_lock lock(shard.mutex);
  if (const auto it = shard.index.find(key); it != shard.index.end()) {
    if (only_if_absent) return;
    const auto slot = it->second;
    std::memcpy(shard.row(slot), vector, dim_ * sizeof(float));
    shard.slots[slot].expiry_ms = expiry_ms;
    shard.referenced(slot).store(1, std::memory_order_relaxed);
    return;
  }

  const std::size_t needed = charge(key.size());
  // Evict until the new entry fits both bounds. The caller guaranteed needed <= max_bytes, so an
  // empty shard always has room; two full sweeps always find a victim (bits cleared on the first).
  const auto evict = [&](std::uint32_t slot, bool was_expired) {
    Shard::Slot& victim = shard.slots[slot];
    shard.index.erase(victim.key);
    shard.bytes -= charge(victim.key.size());
    victim.key = std::string();
    victim.live = false;
    shard.row(slot)[0] = kDeadMarker;
    shard.free_slots.push_back(slot);
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
      if (expired(candidate.expiry_ms, now_ms)) {
        evict(static_cast<std::uint32_t>(slot), true);
        break;
      }
      auto& referenced = shard.referenced(slot);
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
    if (slot / shard.slab_rows == shard.slabs.size()) {
      Shard::Slab slab{Matrix(shard.slab_rows, dim_),
                       std::make_unique<std::atomic<std::uint8_t>[]>(shard.slab_rows)};
      shard.slabs.push_back(std::move(slab));
    }
    shard.slots.emplace_back();
  }
  Shard::Slot& entry = shard.slots[slot];
  entry.key.assign(key);
  entry.expiry_ms = expiry_ms;
  entry.live = true;
  std::memcpy(shard.row(slot), vector, dim_ * sizeof(float));
  // New entries start unreferenced: one read gives them their second chance.
  shard.referenced(slot).store(0, std::memory_order_relaxed);
  shard.index.emplace(entry.key, slot);
  shard.bytes += needed;
}

bool MemoryStore::remove(std::string_view key) {
  Shard& shard = shard_for(key);
  std::unique_lock lock(shard.mutex);
  const auto it = shard.index.find(key);
  if (it == shard.index.end()) return false;
  const auto slot = it->second;
  shard.index.erase(it);
  Shard::Slot& entry = shard.slots[slot];
  shard.bytes -= charge(entry.key.size());
  entry.key = std::string();
  entry.live = false;
  shard.row(slot)[0] = kDeadMarker;
  shard.free_slots.push_back(slot);
  return true;
}

void MemoryStore::clear() {
  for (std::size_t i = 0; i < shard_count_; ++i) {
    Shard& shard = shards_[i];
    std::unique_lock lock(shard.mutex);
    shard.index.clear();
    shard.slots.clear();
    shard.slabs.clear();
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
      Shard::Slot& entry = shard.slots[slot];
      if (!entry.live || !expired(entry.expiry_ms, now_ms)) continue;
      shard.index.erase(entry.key);
      shard.bytes -= charge(entry.key.size());
      entry.key = std::string();
      entry.live = false;
      shard.row(slot)[0] = kDeadMarker;
      shard.free_slots.push_back(static_cast<std::uint32_t>(slot));
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

std::vector<std::vector<KeyHit>> MemoryStore::search(const SimilarityEngine& engine,
                                                     MatrixView queries, std::size_t k,
                                                     Metric metric, std::int64_t now_ms) const {
  const std::size_t nq = queries.rows();
  std::vector<std::vector<std::vector<KeyHit>>> per_shard(shard_count_);
  const auto before = [metric](const KeyHit& a, const KeyHit& b) {
    return hit_before(a, b, metric);
  };
  const auto keep_best = [&](std::vector<KeyHit>& hits) {
    std::sort(hits.begin(), hits.end(), before);
    if (hits.size() > k) hits.resize(k);
  };

  const auto search_shard = [&](std::size_t s) {
    const Shard& shard = shards_[s];
    auto& results = per_shard[s];
    results.assign(nq, {});
    std::shared_lock lock(shard.mutex);
    for (std::size_t b = 0; b < shard.slabs.size(); ++b) {
      const std::size_t first = b * shard.slab_rows;
      if (first >= shard.slots.size()) break;
      const std::size_t rows = std::min(shard.slab_rows, shard.slots.size() - first);
      std::size_t not_live = 0;
      for (std::size_t r = 0; r < rows; ++r) {
        const Shard::Slot& slot = shard.slots[first + r];
        not_live += (!slot.live || expired(slot.expiry_ms, now_ms)) ? 1 : 0;
      }
      if (not_live == rows) continue;
      const std::size_t want = std::min(rows, k + not_live);
      const MatrixView slab(shard.slabs[b].rows.data(), rows, dim_, shard.slabs[b].rows.stride());
      const Hits hits = engine.search(queries, slab, want, metric, Tier::Sequential);
      for (std::size_t q = 0; q < nq; ++q) {
        const auto ids = hits.ids(q);
        const auto scores = hits.scores(q);
        std::size_t kept = 0;
        for (std::size_t h = 0; h < ids.size() && kept < k; ++h) {
          const Shard::Slot& slot = shard.slots[first + static_cast<std::size_t>(ids[h])];
          if (!slot.live || expired(slot.expiry_ms, now_ms)) continue;
          results[q].push_back({slot.key, scores[h]});
          ++kept;
        }
      }
    }
    lock.unlock();
    for (auto& hits : results) keep_best(hits);
  };

  // Small searches stay on the calling thread: waking workers costs more than the work.
  std::size_t rows = 0;
  for (std::size_t s = 0; s < shard_count_; ++s) {
    std::shared_lock lock(shards_[s].mutex);
    rows += shards_[s].slots.size();
  }
  if (rows * nq * dim_ < kParallelSearchWork) {
    for (std::size_t s = 0; s < shard_count_; ++s) search_shard(s);
  } else {
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, shard_count_, 1),
        [&](const tbb::blocked_range<std::size_t>& range) {
          for (std::size_t s = range.begin(); s != range.end(); ++s) search_shard(s);
        },
        tbb::simple_partitioner());
  }

  std::vector<std::vector<KeyHit>> merged(nq);
  for (std::size_t q = 0; q < nq; ++q) {
    for (auto& shard_hits : per_shard) {
      auto& hits = shard_hits[q];
      merged[q].insert(merged[q].end(), std::make_move_iterator(hits.begin()),
                       std::make_move_iterator(hits.end()));
    }
    keep_best(merged[q]);
  }
  return merged;
}

}  // namespace hetcache::cache
