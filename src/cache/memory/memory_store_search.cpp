// The memory store's search over its slabs in place, and the locked view the device mirror reads.
#include <hetcache/error.hpp>

#include <algorithm>
#include <iterator>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "cache/arena_chunks.hpp"
#include "cache/expiry.hpp"
#include "cache/memory/memory_shard.hpp"
#include "cache/memory/memory_store.hpp"
#include "compute/cpu/compact_rows.hpp"
#include "compute/cpu/isa.hpp"
#include "runtime/resources_core.hpp"

namespace hetcache::cache {

namespace {

const cpu::CompactKernelTable& compact_kernels(const SimilarityEngine& engine, StorageType type) {
  return cpu::compact_kernels_for(engine.isa(), cpu::element_kind(type), engine.quantize_queries(),
                                  engine.amx_kernels());
}

// The queries' terms of a compact search, computed once for every slab (null for f32 rows).
std::shared_ptr<const cpu::QueryTerms> prepared_queries(const SimilarityEngine& engine,
                                                        StorageType type, MatrixView queries,
                                                        Metric metric) {
  if (type == StorageType::F32) return nullptr;
  return cpu::prepare_compact_queries(cpu::kernels_for(engine.isa()), compact_kernels(engine, type),
                                      queries, metric);
}

// The compact search of one slab's first `rows` rows, on the calling thread.
cpu::CompactSearchContext slab_context(const SimilarityEngine& engine,
                                       const detail::CompactRows& set, std::size_t rows,
                                       const cpu::QueryTerms* prepared) {
  return cpu::CompactSearchContext{set,
                                   cpu::kernels_for(engine.isa()),
                                   compact_kernels(engine, set.type),
                                   nullptr,
                                   1,
                                   CandidateView(),
                                   rows,
                                   prepared};
}

// Per query, every shard's hits, in shard order (moved out of per_shard).
template <typename Hit>
std::vector<std::vector<Hit>> concat_shards(std::vector<std::vector<std::vector<Hit>>>& per_shard,
                                            std::size_t nq) {
  std::vector<std::vector<Hit>> merged(nq);
  for (std::size_t q = 0; q < nq; ++q) {
    for (auto& shard_hits : per_shard) {
      auto& hits = shard_hits[q];
      merged[q].insert(merged[q].end(), std::make_move_iterator(hits.begin()),
                       std::make_move_iterator(hits.end()));
    }
  }
  return merged;
}

}  // namespace

template <typename PerSlab>
void MemoryStore::for_each_slab(std::size_t shard_index, std::int64_t now_ms,
                                const PerSlab& per_slab) const {
  const Shard& shard = shards_[shard_index];
  std::shared_lock lock(shard.mutex);
  for (std::size_t b = 0; b < shard.slab_count(); ++b) {
    const std::size_t first = shard.slab_start(b);
    if (first >= shard.slots.size()) break;
    const std::size_t rows = std::min(shard.slab_size(b), shard.slots.size() - first);
    std::size_t not_live = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const Shard::Slot& slot = shard.slots[first + r];
      not_live += (!slot.live || is_expired(slot.expiry_ms, now_ms)) ? 1 : 0;
    }
    if (not_live == rows) continue;
    // The slot behind a slab-local id, when it holds a live row.
    const auto live_slot = [&](std::int64_t id) -> const Shard::Slot* {
      const Shard::Slot& slot = shard.slots[first + static_cast<std::size_t>(id)];
      return !slot.live || is_expired(slot.expiry_ms, now_ms) ? nullptr : &slot;
    };
    per_slab(shard, b, rows, not_live, live_slot);
  }
}

void MemoryStore::for_each_shard(const SimilarityEngine& engine, Tier tier,
                                 const std::function<void(std::size_t)>& fn) const {
  if (tier == Tier::Sequential) {
    for (std::size_t s = 0; s < shard_count_; ++s) fn(s);
  } else {
    arena_chunks(engine.resources()->core().arena, shard_count_, 1,
                 [&](std::size_t shard, std::size_t) { fn(shard); });
  }
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
  const auto prepared = prepared_queries(engine, storage_, queries, metric);

  for_each_shard(engine, tier, [&](std::size_t s) {
    auto& results = per_shard[s];
    results.assign(nq, {});
    const auto search_slab = [&](const Shard& shard, std::size_t b, std::size_t rows,
                                 std::size_t not_live, const auto& live_slot) {
      const std::size_t want = std::min(rows, k + not_live);
      Hits hits;
      if (shard.compact()) {
        hits =
            cpu::compact_search(slab_context(engine, *shard.compact_slabs[b], rows, prepared.get()),
                                queries, want, metric, ScoreMode::Fast);
      } else {
        const CandidateView slab(
            MatrixView(shard.slabs[b].data(), rows, dim_, shard.slabs[b].stride()),
            std::span<const float>(shard.slab_norms[b].data(), rows));
        hits = engine.search(queries, slab, want, metric, Tier::Sequential);
      }
      for (std::size_t q = 0; q < nq; ++q) {
        const auto ids = hits.ids(q);
        const auto scores = hits.scores(q);
        std::size_t kept = 0;
        for (std::size_t h = 0; h < ids.size() && kept < k; ++h) {
          if (const Shard::Slot* slot = live_slot(ids[h])) {
            results[q].push_back({slot->key, scores[h]});
            ++kept;
          }
        }
      }
    };
    for_each_slab(s, now_ms, search_slab);
    for (auto& hits : results) keep_best(hits);
  });

  std::vector<std::vector<KeyHit>> merged = concat_shards(per_shard, nq);
  for (auto& hits : merged) keep_best(hits);
  return merged;
}

std::vector<std::vector<MemoryStore::BoundedHit>> MemoryStore::survivors(
    const SimilarityEngine& engine, MatrixView queries, std::size_t k, Metric metric,
    std::int64_t now_ms, Tier tier) const {
  if (storage_ == StorageType::F32) {
    throw Error(ErrorCode::InvalidArgument, "survivors: the memory store keeps f32 rows");
  }
  const std::size_t nq = queries.rows();
  const auto prepared = prepared_queries(engine, storage_, queries, metric);
  std::vector<std::vector<std::vector<BoundedHit>>> per_shard(shard_count_);
  for_each_shard(engine, tier, [&](std::size_t s) {
    auto& results = per_shard[s];
    results.assign(nq, {});
    const auto slab_survivors = [&](const Shard& shard, std::size_t b, std::size_t rows,
                                    std::size_t not_live, const auto& live_slot) {
      // k + not_live: rows that are not live may hold the best keys, and must not raise the
      // floor over a live row of the top-k.
      const auto found = cpu::compact_survivors(
          slab_context(engine, *shard.compact_slabs[b], rows, prepared.get()), queries,
          k + not_live, metric);
      for (std::size_t q = 0; q < nq; ++q) {
        for (const cpu::Survivor& survivor : found[q]) {
          if (const Shard::Slot* slot = live_slot(survivor.id)) {
            results[q].push_back({slot->key, survivor.key, survivor.slack});
          }
        }
      }
    };
    for_each_slab(s, now_ms, slab_survivors);
  });
  return concat_shards(per_shard, nq);
}

MemoryStore::RowState MemoryStore::LockedShards::state(std::size_t shard, std::size_t row) const {
  const Shard& s = store_->shards_[shard];
  if (row >= s.slots.size() || !s.slots[row].live) return RowState::Dead;
  return is_expired(s.slots[row].expiry_ms, now_ms_) ? RowState::Expired : RowState::Live;
}

const std::string& MemoryStore::LockedShards::key(std::size_t shard, std::size_t row) const {
  return store_->shards_[shard].slots[row].key;
}

void MemoryStore::visit_locked(std::int64_t now_ms,
                               const std::function<void(const LockedShards&)>& visit) const {
  // Shards are locked in index order; a writer holds at most one shard lock, so this cannot
  // deadlock.
  if (storage_ != StorageType::F32) {
    throw Error(ErrorCode::Unsupported,
                "the device mirror copies f32 rows; this memory store keeps " +
                    std::string(to_string(storage_)));
  }
  std::vector<std::shared_lock<ShardLock>> locks;
  locks.reserve(shard_count_);
  LockedShards view;
  view.store_ = this;
  view.now_ms_ = now_ms;
  view.slabs_.resize(shard_count_);
  for (std::size_t s = 0; s < shard_count_; ++s) {
    const Shard& shard = shards_[s];
    locks.emplace_back(shard.mutex);
    for (std::size_t b = 0; b < shard.slab_count(); ++b) {
      view.slabs_[s].push_back({shard.slabs[b].view(), shard.slab_norms[b], shard.slab_start(b),
                                shard.slab_versions[b]});
    }
  }
  visit(view);
}

}  // namespace hetcache::cache
