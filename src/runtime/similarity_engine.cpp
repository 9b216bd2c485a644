// SimilarityEngine: validation at the API boundary, tier choice, and the CPU tiers.
#include <hetcache/error.hpp>
#include <hetcache/similarity.hpp>

#include <limits>
#include <string>

#include "cpu/cpu_tiers.hpp"
#include "cpu/isa.hpp"

namespace hetcache {
namespace {

// Below this many multiply-adds a call runs on the calling thread. A rough rule, not yet
// calibrated (the scheduler issue replaces it): 4M multiply-adds take ~70 us on one AVX-512 core,
// the same order as waking the arena's workers.
constexpr std::size_t kSequentialWorkLimit = std::size_t{1} << 22;

void check_same_dim(MatrixView queries, MatrixView candidates) {
  const bool queries_unset = queries.rows() == 0 && queries.dim() == 0;
  const bool candidates_unset = candidates.rows() == 0 && candidates.dim() == 0;
  if (queries.dim() != candidates.dim() && !queries_unset && !candidates_unset) {
    throw Error(ErrorCode::DimensionMismatch, "queries have dim " + std::to_string(queries.dim()) +
                                                  " but candidates have dim " +
                                                  std::to_string(candidates.dim()));
  }
}

void check_product(std::size_t a, std::size_t b, std::size_t element_bytes, const char* what) {
  if (a != 0 && b > std::numeric_limits<std::size_t>::max() / element_bytes / a) {
    throw Error(ErrorCode::InvalidArgument, std::string(what) + ": " + std::to_string(a) + " x " +
                                                std::to_string(b) + " results overflow");
  }
}

}  // namespace

Hits::Hits(std::size_t num_queries, std::size_t k)
    : num_queries_(num_queries), k_(k), scores_(num_queries * k), ids_(num_queries * k) {}

std::span<const float> Hits::scores(std::size_t query) const {
  return {scores_.data() + query * k_, k_};
}
std::span<const std::int64_t> Hits::ids(std::size_t query) const {
  return {ids_.data() + query * k_, k_};
}
std::span<float> Hits::mutable_scores(std::size_t query) {
  return {scores_.data() + query * k_, k_};
}
std::span<std::int64_t> Hits::mutable_ids(std::size_t query) {
  return {ids_.data() + query * k_, k_};
}

struct SimilarityEngine::Impl {
  Impl(Isa isa_in, std::size_t threads)
      : isa(isa_in), tiers(cpu::kernels_for(isa_in), threads) {}

  // Sequential or Cpu; throws for tiers that do not run similarity (yet).
  bool parallel_for(Tier tier) const {
    switch (tier) {
      case Tier::Sequential: return false;
      case Tier::Cpu: return true;
      case Tier::Fiber:
        throw Error(ErrorCode::Unsupported,
                    "tier fiber runs cache I/O, not similarity compute; use sequential or cpu");
      case Tier::Gpu:
        throw Error(ErrorCode::Unsupported, "tier gpu is not available in this build");
    }
    throw Error(ErrorCode::InvalidArgument, "unknown tier");
  }

  Isa isa;
  cpu::CpuTiers tiers;
};

SimilarityEngine::SimilarityEngine(SimilarityOptions options)
    : impl_(std::make_unique<Impl>(options.isa ? *options.isa : default_isa(),
                                   options.cpu_threads)) {}

SimilarityEngine::~SimilarityEngine() = default;

Isa SimilarityEngine::isa() const noexcept { return impl_->isa; }
std::size_t SimilarityEngine::cpu_threads() const noexcept { return impl_->tiers.threads(); }

Tier SimilarityEngine::default_tier(std::size_t queries, std::size_t candidates,
                                    std::size_t dim) const noexcept {
  const double work = static_cast<double>(queries) * static_cast<double>(candidates) *
                      static_cast<double>(dim);
  return work < static_cast<double>(kSequentialWorkLimit) ? Tier::Sequential : Tier::Cpu;
}

Matrix SimilarityEngine::scores(MatrixView queries, MatrixView candidates, Metric metric,
                                std::optional<Tier> tier) const {
  check_same_dim(queries, candidates);
  check_product(queries.rows(), candidates.rows(), sizeof(float), "scores");
  const bool parallel = impl_->parallel_for(
      tier.value_or(default_tier(queries.rows(), candidates.rows(), queries.dim())));
  Matrix out(queries.rows(), candidates.rows());
  impl_->tiers.scores(queries, candidates, metric, parallel, out.data(), out.stride());
  return out;
}

Hits SimilarityEngine::search(MatrixView queries, MatrixView candidates, std::size_t k,
                              Metric metric, std::optional<Tier> tier) const {
  check_same_dim(queries, candidates);
  if (candidates.rows() > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())) {
    throw Error(ErrorCode::InvalidArgument,
                "candidates: " + std::to_string(candidates.rows()) + " rows exceed int64 ids");
  }
  const std::size_t kept = k < candidates.rows() ? k : candidates.rows();
  check_product(queries.rows(), kept, sizeof(float) + sizeof(std::int64_t), "search");
  const bool parallel = impl_->parallel_for(
      tier.value_or(default_tier(queries.rows(), candidates.rows(), queries.dim())));
  if (kept == 0 || queries.rows() == 0) return Hits(queries.rows(), 0);
  return impl_->tiers.search(queries, candidates, kept, metric, parallel);
}

std::vector<float> SimilarityEngine::batch_similarity_search(std::span<const float> query,
                                                             MatrixView candidates, Metric metric,
                                                             std::optional<Tier> tier) const {
  if (query.size() != candidates.dim() && candidates.rows() > 0) {
    throw Error(ErrorCode::DimensionMismatch, "query has " + std::to_string(query.size()) +
                                                  " values but candidates have dim " +
                                                  std::to_string(candidates.dim()));
  }
  const bool parallel =
      impl_->parallel_for(tier.value_or(default_tier(1, candidates.rows(), query.size())));
  std::vector<float> out(candidates.rows());
  if (candidates.rows() == 0) return out;
  const MatrixView one(query.data(), 1, query.size());
  impl_->tiers.scores(one, candidates, metric, parallel, out.data(), out.size());
  return out;
}

}  // namespace hetcache
