// Scheduler::search_database: a whole durable database searched batch by batch, each batch placed
// by the scheduler, the batches' best hits merged into one top-k per query.
#include <hetcache/error.hpp>
#include <hetcache/scheduler.hpp>

#include <algorithm>

namespace hetcache {
namespace {

// At most this many bytes of vectors per batch (a 20,000-wide vector must not make a batch of
// gigabytes), and at most kBatchRows rows.
constexpr std::size_t kBatchBytes = std::size_t{64} << 20;
constexpr std::size_t kBatchRows = 65536;

}  // namespace

Scheduler::DatabaseHits Scheduler::search_database(
    EmbeddingCache& cache, MatrixView queries, std::size_t k, Metric metric,
    const std::function<void(std::uint64_t rows)>& progress) {
  if (queries.rows() > 0 && queries.dim() != cache.dim())
    throw Error(ErrorCode::DimensionMismatch,
                "search_database: the queries have dimension " + std::to_string(queries.dim()) +
                    ", the database holds dimension " + std::to_string(cache.dim()));
  DatabaseHits result;
  result.hits.resize(queries.rows());
  const auto better = [metric](const KeyHit& a, const KeyHit& b) {
    return ranks_before(a, b, metric);
  };
  std::uint64_t searched = 0;
  const std::size_t batch_rows =
      std::clamp<std::size_t>(kBatchBytes / (cache.dim() * sizeof(float)), 1, kBatchRows);
  result.counts = cache.scan(
      [&](std::span<const std::string> keys, std::span<const std::int64_t> row_ids,
          MatrixView rows) {
        if (k > 0 && queries.rows() > 0) {
          Decision decision;
          const Hits hits = search(queries, rows, std::min(k, rows.rows()), metric, &decision);
          ++result.batches[static_cast<std::size_t>(decision.tier)];
          // Each query's best k so far, plus this batch's best k, cut back to k (the batch's keys
          // are kept only for its hits).
          for (std::size_t q = 0; q < queries.rows(); ++q) {
            auto& best = result.hits[q];
            const auto scores = hits.scores(q);
            const auto ids = hits.ids(q);
            for (std::size_t j = 0; j < scores.size(); ++j) {
              const auto row = static_cast<std::size_t>(ids[j]);
              best.push_back({keys[row], scores[j], row_ids[row]});
            }
            std::sort(best.begin(), best.end(), better);
            if (best.size() > k) best.resize(k);
          }
        }
        searched += rows.rows();
        if (progress) progress(searched);
      },
      batch_rows);
  return result;
}

}  // namespace hetcache
