#pragma once
// Batched similarity on the CPU tiers: full score matrices, top-k search, one-query scoring.

#include <hetcache/matrix.hpp>
#include <hetcache/types.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace hetcache {

// Top-k results: for each query, up to k (score, id) pairs, best first.
// Ordering rules (identical on every tier and ISA): better score first (larger for Dot/Cosine,
// smaller for L2); equal scores by lower id; NaN scores rank after every real score. With N
// candidates every query gets exactly min(k, N) hits, so there are never placeholder ids.
// For L2 the score is the squared distance.
class Hits {
 public:
  Hits() = default;
  Hits(std::size_t num_queries, std::size_t k);

  std::size_t num_queries() const noexcept { return num_queries_; }
  std::size_t k() const noexcept { return k_; }  // hits per query
  std::span<const float> scores(std::size_t query) const;
  std::span<const std::int64_t> ids(std::size_t query) const;
  std::span<float> mutable_scores(std::size_t query);
  std::span<std::int64_t> mutable_ids(std::size_t query);

 private:
  std::size_t num_queries_ = 0;
  std::size_t k_ = 0;
  std::vector<float> scores_;
  std::vector<std::int64_t> ids_;
};

struct SimilarityOptions {
  // SIMD path for this engine; empty = default_isa(). An ISA the CPU lacks is an error.
  std::optional<Isa> isa;
  // Threads of the Cpu tier; 0 = one per core.
  std::size_t cpu_threads = 0;
};

// Computes similarities between query vectors and candidate vectors.
// Every call validates its inputs and throws hetcache::Error naming the bad value: dimension
// mismatch (DimensionMismatch), sizes whose product overflows (InvalidArgument), and a tier this
// engine cannot run (Unsupported). Calls are thread-safe; results do not depend on the tier or on
// the number of threads.
class SimilarityEngine {
 public:
  explicit SimilarityEngine(SimilarityOptions options = {});
  ~SimilarityEngine();
  SimilarityEngine(const SimilarityEngine&) = delete;
  SimilarityEngine& operator=(const SimilarityEngine&) = delete;

  Isa isa() const noexcept;
  std::size_t cpu_threads() const noexcept;

  // The tier used when a call names none: Sequential for small work, Cpu otherwise.
  // (The adaptive scheduler replaces this rule.)
  Tier default_tier(std::size_t queries, std::size_t candidates, std::size_t dim) const noexcept;

  // Full Q x N matrix of scores (squared distances for L2); row q holds query q's scores.
  Matrix scores(MatrixView queries, MatrixView candidates, Metric metric = Metric::Dot,
                std::optional<Tier> tier = std::nullopt) const;

  // The k best candidates per query, computed without materialising the Q x N matrix.
  // k = 0 or N = 0 gives Hits with zero hits per query.
  Hits search(MatrixView queries, MatrixView candidates, std::size_t k,
              Metric metric = Metric::Cosine, std::optional<Tier> tier = std::nullopt) const;

  // One score per candidate for a single query (the seed's batch_similarity_search).
  std::vector<float> batch_similarity_search(std::span<const float> query, MatrixView candidates,
                                             Metric metric = Metric::Cosine,
                                             std::optional<Tier> tier = std::nullopt) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hetcache
