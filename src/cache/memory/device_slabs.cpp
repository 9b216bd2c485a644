#include "cache/memory/device_slabs.hpp"

#include <algorithm>

namespace hetcache::cache {

std::uint64_t DeviceSlabs::slab_uploads() const {
  std::lock_guard lock(mutex_);
  return slab_uploads_;
}

std::vector<std::size_t> DeviceSlabs::sync(const MemoryStore::LockedShards& shards) {
  const std::size_t shard_count = shards.shards();
  std::vector<std::size_t> first_row(shard_count + 1, 0);
  bool same_layout = versions_.size() == shard_count;
  std::size_t dim = 0;
  for (std::size_t s = 0; s < shard_count; ++s) {
    const auto slabs = shards.slabs(s);
    // A shard's slabs hold its slots in order, so its rows on the device are its slots.
    first_row[s + 1] =
        first_row[s] + (slabs.empty() ? 0 : slabs.back().first_slot + slabs.back().rows.rows());
    if (same_layout && versions_[s].size() != slabs.size()) same_layout = false;
    if (!slabs.empty()) dim = slabs.front().rows.dim();
  }
  const std::size_t total = first_row.back();
  if (total == 0) return first_row;
  if (device_ == nullptr || device_->rows < total) {
    // Room for a quarter more, so a cache that is filling up does not reallocate every slab.
    device_.reset();
    versions_.clear();
    device_ = tier_.allocate(total + total / 4, dim, precision_);
    same_layout = false;
  }
  if (!same_layout) {
    // Version 0 is never a slab's (versions start at 1): every slab is uploaded again.
    versions_.assign(shard_count, {});
    for (std::size_t s = 0; s < shard_count; ++s) versions_[s].assign(shards.slabs(s).size(), 0);
  }
  for (std::size_t s = 0; s < shard_count; ++s) {
    const auto slabs = shards.slabs(s);
    for (std::size_t b = 0; b < slabs.size(); ++b) {
      if (versions_[s][b] == slabs[b].version) continue;
      tier_.write_rows(*device_, first_row[s] + slabs[b].first_slot, slabs[b].rows);
      versions_[s][b] = slabs[b].version;
      ++slab_uploads_;
    }
  }
  return first_row;
}

std::optional<std::vector<std::vector<KeyHit>>> DeviceSlabs::search(const MemoryStore& store,
                                                                    MatrixView queries,
                                                                    std::size_t k, Metric metric,
                                                                    std::int64_t now_ms) {
  std::optional<std::vector<std::vector<KeyHit>>> result;
  std::lock_guard lock(mutex_);
  store.visit_locked(now_ms, [&](const MemoryStore::LockedShards& shards) {
    std::vector<std::size_t> first_row;
    try {
      first_row = sync(shards);
    } catch (const gpu::GpuOutOfMemory&) {
      device_.reset();  // what was uploaded is unknown now: start again next time
      versions_.clear();
      return;
    }
    const std::size_t total = first_row.back();
    std::vector<std::vector<KeyHit>> out(queries.rows());
    std::size_t live = 0, expired = 0;
    for (std::size_t s = 0; s + 1 < first_row.size(); ++s) {
      for (std::size_t row = 0; row < first_row[s + 1] - first_row[s]; ++row) {
        const auto state = shards.state(s, row);
        live += state == MemoryStore::RowState::Live ? 1 : 0;
        expired += state == MemoryStore::RowState::Expired ? 1 : 0;
      }
    }
    if (live == 0 || k == 0 || queries.rows() == 0) {
      result = std::move(out);
      return;
    }
    detail::DeviceRows rows = *device_;
    rows.rows = total;
    // Runs the device search for `want` hits and keeps the first k live ones; false: out of memory.
    const auto run = [&](std::size_t want) {
      const auto hits = tier_.search(queries, rows, std::min(want, total), metric);
      if (!hits) return false;
      for (std::size_t q = 0; q < out.size(); ++q) {
        out[q].clear();
        const auto ids = hits->ids(q);
        const auto scores = hits->scores(q);
        for (std::size_t h = 0; h < ids.size() && out[q].size() < k; ++h) {
          const auto id = static_cast<std::size_t>(ids[h]);
          const std::size_t s =
              std::upper_bound(first_row.begin(), first_row.end(), id) - first_row.begin() - 1;
          if (shards.state(s, id - first_row[s]) != MemoryStore::RowState::Live) continue;
          out[q].push_back({shards.key(s, id - first_row[s]), scores[h]});
        }
      }
      return true;
    };
    if (!run(k + expired)) return;
    const std::size_t wanted = std::min(k, live);
    const bool short_of_live =
        std::any_of(out.begin(), out.end(), [&](const auto& hits) { return hits.size() < wanted; });
    if (short_of_live && !run(k + (total - live))) return;
    for (auto& hits : out) {
      std::sort(hits.begin(), hits.end(),
                [metric](const KeyHit& a, const KeyHit& b) { return ranks_before(a, b, metric); });
    }
    result = std::move(out);
  });
  return result;
}

}  // namespace hetcache::cache
