// src/cache/memory: where vectors live in RAM -- the sharded, bounded memory store (this file,
// CLOCK eviction, in-place search) and its device mirror (device_slabs.cpp). It runs on the tier it
// is given (search: the calling thread or the Resources' arena) and includes no scheduler or
// durable-store code.
#include "cache/memory/memory_store.hpp"

#include <hetcache/error.hpp>

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

#include "cache/arena_chunks.hpp"
#include "cache/expiry.hpp"
#include "compute/cpu/isa.hpp"
#include "compute/cpu/kernel_abi.hpp"
#include "runtime/resources_core.hpp"

namespace hetcache::cache {
namespace {

constexpr std::size_t kFloatsPerRowAlignment = Matrix::kRowAlignmentBytes / sizeof(float);
constexpr std::size_t kMaxShards = 64;
constexpr std::size_t kMinEntriesPerShard = 128;
// A shard's slabs grow 16, 16, 32, 64, ... rows up to 4096, then stay at 4096: a fresh or small
// cache allocates (and zeroes) only about what it holds. Both are powers of two.
constexpr std::size_t kFirstSlabRows = 16;
constexpr std::size_t kMaxSlabRows = 4096;
// Batches up to this size lock per key instead of grouping keys by shard first.
constexpr std::size_t kUngroupedBatch = 4;
constexpr float kDeadMarker = std::numeric_limits<float>::quiet_NaN();

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

}  // namespace

struct alignas(64) MemoryStore::Shard {
  // What a get needs sits in the index node, so a hit touches the node and the row, nothing else.
  struct Entry {
    std::uint32_t slot = 0;
    std::int64_t expiry_ms = 0;
    mutable std::atomic<std::uint8_t> referenced{0};  // CLOCK's bit, set by shared readers
  };
  using Index = std::unordered_map<std::string, Entry, StringHash, std::equal_to<>>;
  // A slot points back at its index node (nodes never move) and repeats the expiry, so search and
  // cleanup scan slots sequentially without chasing pointers.
  struct Slot {
    Index::value_type* node = nullptr;  // null: free
    std::int64_t expiry_ms = 0;
  };

  mutable std::shared_mutex mutex;
  Index index;
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

  void set_slab_sizes(std::size_t max_entries_in_shard) {
    max_slab_rows = std::bit_ceil(std::min(max_entries_in_shard, kMaxSlabRows));
    first_slab_rows = std::min(kFirstSlabRows, max_slab_rows);
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
    row_for_write(slot)[0] = kDeadMarker;
    norm_of(slot) = kDeadMarker;
  }
  // A new slab's rows all start dead, so a scan of the whole slab (the device mirror's) ranks the
  // rows not handed out yet after every live one.
  void add_slab(std::size_t dim) {
    const std::size_t rows = slab_size(slabs.size());
    slabs.emplace_back(rows, dim);
    for (std::size_t r = 0; r < rows; ++r) slabs.back().row(r)[0] = kDeadMarker;
    slab_norms.emplace_back(rows, kDeadMarker);
    slab_versions.push_back(++writes);
  }
};

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

std::vector<std::vector<KeyHit>> MemoryStore::search(const SimilarityEngine& engine,
                                                     MatrixView queries, std::size_t k,
                                                     Metric metric, std::int64_t now_ms,
                                                     Tier tier) const {
  const std::size_t nq = queries.rows();
  std::vector<std::vector<std::vector<KeyHit>>> per_shard(shard_count_);
  const auto before = [metric](const KeyHit& a, const KeyHit& b) {
    return ranks_before(a, b, metric);
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
      const std::size_t first = shard.slab_start(b);
      if (first >= shard.slots.size()) break;
      const std::size_t rows = std::min(shard.slab_size(b), shard.slots.size() - first);
      std::size_t not_live = 0;
      for (std::size_t r = 0; r < rows; ++r) {
        const Shard::Slot& slot = shard.slots[first + r];
        not_live += (slot.node == nullptr || is_expired(slot.expiry_ms, now_ms)) ? 1 : 0;
      }
      if (not_live == rows) continue;
      const std::size_t want = std::min(rows, k + not_live);
      const CandidateView slab(MatrixView(shard.slabs[b].data(), rows, dim_, shard.slabs[b].stride()),
                               std::span<const float>(shard.slab_norms[b].data(), rows));
      const Hits hits = engine.search(queries, slab, want, metric, Tier::Sequential);
      for (std::size_t q = 0; q < nq; ++q) {
        const auto ids = hits.ids(q);
        const auto scores = hits.scores(q);
        std::size_t kept = 0;
        for (std::size_t h = 0; h < ids.size() && kept < k; ++h) {
          const Shard::Slot& slot = shard.slots[first + static_cast<std::size_t>(ids[h])];
          if (slot.node == nullptr || is_expired(slot.expiry_ms, now_ms)) continue;
          results[q].push_back({slot.node->first, scores[h]});
          ++kept;
        }
      }
    }
    lock.unlock();
    for (auto& hits : results) keep_best(hits);
  };

  if (tier == Tier::Sequential) {
    for (std::size_t s = 0; s < shard_count_; ++s) search_shard(s);
  } else {
    arena_chunks(engine.resources()->core().arena, shard_count_, 1,
                 [&](std::size_t shard, std::size_t) { search_shard(shard); });
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

MemoryStore::RowState MemoryStore::LockedShards::state(std::size_t shard, std::size_t row) const {
  const Shard& s = store_->shards_[shard];
  if (row >= s.slots.size() || s.slots[row].node == nullptr) return RowState::Dead;
  return is_expired(s.slots[row].expiry_ms, now_ms_) ? RowState::Expired : RowState::Live;
}

const std::string& MemoryStore::LockedShards::key(std::size_t shard, std::size_t row) const {
  return store_->shards_[shard].slots[row].node->first;
}

void MemoryStore::visit_locked(std::int64_t now_ms,
                               const std::function<void(const LockedShards&)>& visit) const {
  // Shards are locked in index order; a writer holds at most one shard lock, so this cannot
  // deadlock.
  std::vector<std::shared_lock<std::shared_mutex>> locks;
  locks.reserve(shard_count_);
  LockedShards view;
  view.store_ = this;
  view.now_ms_ = now_ms;
  view.slabs_.resize(shard_count_);
  for (std::size_t s = 0; s < shard_count_; ++s) {
    const Shard& shard = shards_[s];
    locks.emplace_back(shard.mutex);
    for (std::size_t b = 0; b < shard.slabs.size(); ++b) {
      view.slabs_[s].push_back({shard.slabs[b].view(), shard.slab_norms[b], shard.slab_start(b),
                                shard.slab_versions[b]});
    }
  }
  visit(view);
}

}  // namespace hetcache::cache
