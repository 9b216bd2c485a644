// A cache whose stores keep compact rows (CacheOptions::memory_storage, durable_storage): the
// options it accepts, and exact search over a compact memory store. The memory store gives, per
// query, every live row whose f32 score its compact bounds cannot rule out of the top-k; the lists
// of all shards are narrowed once more under the k-th best lower bound, and what is left is
// re-scored from the durable store's f32 values by the engine's f32 kernels -- so the hits, and
// their score bits, are the f32 search's.
#include <algorithm>
#include <functional>
#include <limits>
#include <unordered_map>

#include "cache/arena_chunks.hpp"
#include "cache/cache_impl.hpp"

namespace hetcache {
namespace {

using cache::MemoryStore;

// Drops the hits that cannot be in the top-k: those whose rank_key + slack is under the k-th
// largest rank_key - slack. A NaN bound keeps its hit.
void narrow(std::vector<MemoryStore::BoundedHit>& hits, std::size_t k) {
  if (hits.size() <= k) return;
  std::vector<float> lowers(hits.size());
  for (std::size_t i = 0; i < hits.size(); ++i) {
    const float low = hits[i].rank_key - hits[i].slack;
    lowers[i] = low == low ? low : -std::numeric_limits<float>::infinity();
  }
  std::nth_element(lowers.begin(), lowers.begin() + static_cast<std::ptrdiff_t>(k - 1),
                   lowers.end(), std::greater<float>());
  const float floor = lowers[k - 1];
  std::erase_if(hits,
                [floor](const MemoryStore::BoundedHit& h) { return h.rank_key + h.slack < floor; });
}

}  // namespace

void EmbeddingCache::Impl::check_storage_options() const {
  const std::string memory_type(to_string(options.memory_storage));
  const std::string durable_type(to_string(options.durable_storage));
  if (options.durable_storage != StorageType::F32 && !durable) {
    throw Error(ErrorCode::InvalidArgument,
                "durable_storage is " + durable_type +
                    " and this cache has no durable store: set CacheOptions.durable or "
                    "CacheOptions.redis, or leave durable_storage f32");
  }
  if (options.memory_storage == StorageType::F32) return;
  if (options.search_on_gpu) {
    throw Error(ErrorCode::InvalidArgument,
                "search_on_gpu mirrors f32 rows, and memory_storage is " + memory_type +
                    ": keep memory_storage f32 for GPU search, or leave search_on_gpu off");
  }
  if (options.search_mode == ScoreMode::Exact && !durable) {
    throw Error(
        ErrorCode::InvalidArgument,
        "search_mode exact over a " + memory_type +
            " memory store re-scores from the durable store's f32 values, and this cache "
            "has none: set CacheOptions.durable or CacheOptions.redis, or search_mode fast");
  }
  if (options.search_mode == ScoreMode::Exact && options.durable_storage != StorageType::F32) {
    throw Error(ErrorCode::InvalidArgument,
                "search_mode exact over a " + memory_type +
                    " memory store re-scores from the durable store's f32 values, and "
                    "durable_storage is " +
                    durable_type + ": keep durable_storage f32, or search_mode fast");
  }
}

MatrixView EmbeddingCache::Impl::as_durably_stored(MatrixView values, Matrix& scratch) const {
  if (options.durable_storage == StorageType::F32) return values;
  scratch = cache::round_as_stored(options.durable_storage, values);
  return scratch.view();
}

std::vector<std::vector<KeyHit>> EmbeddingCache::Impl::exact_compact_search(
    MatrixView queries, std::size_t k, Metric metric, std::int64_t now_ms, Tier tier) {
  const std::size_t nq = queries.rows();
  auto bounded = memory.survivors(engine(), queries, k, metric, now_ms, tier);

  // Each query's candidates in key order (ties rank by key), and the keys of all queries once.
  std::vector<std::string_view> keys;
  std::unordered_map<std::string_view, std::size_t> row_of;
  for (auto& hits : bounded) {
    narrow(hits, k);
    std::sort(hits.begin(), hits.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
    for (const auto& h : hits) {
      if (row_of.emplace(h.key, keys.size()).second) keys.push_back(h.key);
    }
  }

  // The f32 values: from the durable store; a key it cannot give (gone, expired, corrupt, or the
  // store unreachable with degrade_to_memory) is scored from its stored row; a key the memory
  // store has lost meanwhile too is left out.
  Matrix values(keys.size(), options.dim);
  cache::DurableStore::BatchRead read;
  read.reset(keys.size());
  if (!keys.empty()) {
    durable_call_or_degrade(
        [&] { durable->get_batch(keys, values.data(), values.stride(), now_ms, read); });
  }
  std::vector<std::uint8_t> usable(keys.size(), 1);
  std::size_t rescored = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (read.results[i] == cache::DurableStore::ReadResult::Found) {
      ++rescored;
    } else if (memory.get(keys[i], values.row(i), now_ms) != cache::Lookup::Hit) {
      usable[i] = 0;
    }
  }
  counters.local().rescored_keys.fetch_add(rescored, std::memory_order_relaxed);

  std::vector<std::vector<KeyHit>> out(nq);
  const auto rescore = [&](std::size_t first, std::size_t count) {
    for (std::size_t q = first; q < first + count; ++q) {
      std::vector<const std::string*> names;
      for (const auto& h : bounded[q]) {
        if (usable[row_of.at(h.key)]) names.push_back(&h.key);
      }
      Matrix gathered(names.size(), options.dim);
      for (std::size_t j = 0; j < names.size(); ++j) {
        std::copy_n(values.row(row_of.at(*names[j])), options.dim, gathered.row(j));
      }
      const Hits hits =
          engine().search(queries.slice(q, 1), gathered.view(), k, metric, Tier::Sequential);
      const auto ids = hits.ids(0);
      const auto scores = hits.scores(0);
      for (std::size_t h = 0; h < ids.size(); ++h) {
        out[q].push_back({*names[static_cast<std::size_t>(ids[h])], scores[h]});
      }
    }
  };
  if (tier == Tier::Cpu) {
    cache::arena_chunks(resources->core().arena, nq, 1, rescore);
  } else {
    rescore(0, nq);
  }
  return out;
}

}  // namespace hetcache
