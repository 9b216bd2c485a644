// The compact-set front end of SimilarityEngine: validates each call, places it on a CPU tier,
// and hands the set to src/compute/cpu (compact_set.cpp, compact_search.cpp).
#include <hetcache/compact.hpp>

#include <limits>
#include <string>

#include "compute/cpu/compact_rows.hpp"
#include "compute/engine/engine_impl.hpp"

namespace hetcache {
CompactSet SimilarityEngine::compact_set(MatrixView rows, StorageType type, bool keep_f32) const {
  if (rows.rows() > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())) {
    throw Error(ErrorCode::InvalidArgument,
                "compact_set: " + std::to_string(rows.rows()) + " rows exceed int64 ids");
  }
  const bool parallel =
      impl_->parallel_for(impl_->place(1, rows.rows(), rows.dim(), /*host_only=*/true));
  Matrix kept = (keep_f32 || type == StorageType::F32) ? Matrix::copy_of(rows) : Matrix();
  const MatrixView source =
      kept.rows() == rows.rows() && kept.dim() == rows.dim() ? kept.view() : rows;
  std::vector<float> norms(rows.rows());
  impl_->tiers.squared_norms(source, parallel, norms.data());
  const cpu::CompactKernelTable& kernels = cpu::compact_kernels_for(
      impl_->isa, cpu::element_kind(type), impl_->quantize_queries, impl_->amx_kernels);
  CompactSet out;
  out.rows_ = cpu::make_compact_rows(kernels, parallel ? &impl_->core.arena : nullptr,
                                     impl_->tiers.threads(), source, std::move(kept),
                                     std::move(norms), type);
  return out;
}

std::string_view SimilarityEngine::compact_kernels(StorageType type) const {
  if (type == StorageType::F32) return to_string(impl_->isa);
  return cpu::compact_kernels_for(impl_->isa, cpu::element_kind(type), impl_->quantize_queries,
                                  impl_->amx_kernels)
      .name;
}

Hits SimilarityEngine::search(MatrixView queries, const CompactSet& candidates, std::size_t k,
                              Metric metric, ScoreMode mode, std::optional<Tier> tier) const {
  return search_compact(queries, candidates, candidates.f32_rows(), k, metric, mode, tier);
}

Hits SimilarityEngine::search_compact(MatrixView queries, const CompactSet& candidates,
                                      CandidateView f32, std::size_t k, Metric metric,
                                      ScoreMode mode, std::optional<Tier> tier) const {
  if (candidates.empty()) {
    throw Error(ErrorCode::InvalidArgument,
                "search: the CompactSet is empty (make one with SimilarityEngine::compact_set)");
  }
  if (mode == ScoreMode::Exact && f32.rows().rows() != candidates.rows()) {
    throw Error(ErrorCode::InvalidArgument,
                "search: exact mode re-scores from the f32 rows, and this " +
                    std::string(to_string(candidates.type())) +
                    " set was made with keep_f32 = false: pass the rows to search, or use "
                    "ScoreMode::Fast");
  }
  const detail::CompactRows& set = *candidates.rows_;
  if (queries.dim() != set.dim && queries.rows() > 0) {
    throw Error(ErrorCode::DimensionMismatch, "queries have dim " + std::to_string(queries.dim()) +
                                                  " but the compact set has dim " +
                                                  std::to_string(set.dim));
  }
  const std::size_t kept = k < set.rows ? k : set.rows;
  if (kept != 0 && queries.rows() > std::numeric_limits<std::size_t>::max() / 12 / kept) {
    throw Error(ErrorCode::InvalidArgument, "search: " + std::to_string(queries.rows()) + " x " +
                                                std::to_string(kept) + " results overflow");
  }
  const Tier chosen = tier ? *tier : impl_->place(queries.rows(), set.rows, set.dim, true);
  if (chosen == Tier::Gpu) {
    throw Error(ErrorCode::Unsupported,
                "tier gpu does not search compact sets (f16 / bf16 / i8 on the CPU); upload f32 "
                "rows with SimilarityEngine::upload for the GPU");
  }
  const bool parallel = impl_->parallel_for(chosen);
  if (kept == 0 || queries.rows() == 0) return Hits(queries.rows(), 0);
  if (set.type == StorageType::F32) {
    return impl_->tiers.search(queries, f32.rows(), set.sq_norms.data(), kept, metric, parallel);
  }
  const cpu::CompactSearchContext context{
      set,
      cpu::kernels_for(impl_->isa),
      cpu::compact_kernels_for(impl_->isa, set.element_kind(), impl_->quantize_queries,
                               impl_->amx_kernels),
      parallel ? &impl_->core.arena : nullptr,
      impl_->tiers.threads(),
      f32,
      set.rows};
  return cpu::compact_search(context, queries, kept, metric, mode);
}

Hits SimilarityEngine::search(MatrixView queries, const CompactSet& candidates,
                              CandidateView f32_rows, std::size_t k, Metric metric,
                              std::optional<Tier> tier) const {
  if (!candidates.empty() &&
      (f32_rows.rows().rows() != candidates.rows() || f32_rows.rows().dim() != candidates.dim())) {
    throw Error(ErrorCode::InvalidArgument,
                "search: the f32 rows are " + std::to_string(f32_rows.rows().rows()) + " x " +
                    std::to_string(f32_rows.rows().dim()) + " but the compact set is " +
                    std::to_string(candidates.rows()) + " x " + std::to_string(candidates.dim()));
  }
  return search_compact(queries, candidates, f32_rows, k, metric, ScoreMode::Exact, tier);
}

}  // namespace hetcache
