// The memory store's search over its slabs in place, and the locked view the device mirror reads.
#include <algorithm>
#include <iterator>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "cache/arena_chunks.hpp"
#include "cache/expiry.hpp"
#include "cache/memory/memory_shard.hpp"
#include "cache/memory/memory_store.hpp"
#include "runtime/resources_core.hpp"

namespace hetcache::cache {

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
        not_live += (!slot.live || is_expired(slot.expiry_ms, now_ms)) ? 1 : 0;
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
          if (!slot.live || is_expired(slot.expiry_ms, now_ms)) continue;
          results[q].push_back({slot.key, scores[h]});
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
  std::vector<std::shared_lock<ShardLock>> locks;
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
