// src/compute owns similarity compute: the per-ISA kernels and the Sequential and Cpu tiers
// (compute/cpu), the GPU tier's interface and its CUDA implementation (compute/gpu, compute/cuda),
// and this front end (compute/engine), which validates every call and runs it on the tier it is
// given. It owns no threads or devices (they come from the Resources: runtime/resources_core.hpp)
// and chooses no tier: a call without one asks src/scheduler's fixed rule. Nothing here includes
// cache code.
#include <hetcache/error.hpp>
#include <hetcache/placement.hpp>
#include <hetcache/similarity.hpp>

#include <algorithm>
#include <limits>
#include <mutex>
#include <string>

#include "compute/cpu/compact_rows.hpp"
#include "compute/engine/engine_impl.hpp"

namespace hetcache {
namespace {

void check_same_dim(MatrixView queries, MatrixView candidates) {
  const bool queries_unset = queries.rows() == 0 && queries.dim() == 0;
  const bool candidates_unset = candidates.rows() == 0 && candidates.dim() == 0;
  if (queries.dim() != candidates.dim() && !queries_unset && !candidates_unset) {
    throw Error(ErrorCode::DimensionMismatch, "queries have dim " + std::to_string(queries.dim()) +
                                                  " but candidates have dim " +
                                                  std::to_string(candidates.dim()));
  }
}

// The kept norms of a candidate set, or null: the kernels compute them while scanning.
const float* sq_norms_of(const CandidateView& set) {
  return set.squared_norms().empty() ? nullptr : set.squared_norms().data();
}

void check_product(std::size_t a, std::size_t b, std::size_t element_bytes, const char* what) {
  if (a != 0 && b > std::numeric_limits<std::size_t>::max() / element_bytes / a) {
    throw Error(ErrorCode::InvalidArgument, std::string(what) + ": " + std::to_string(a) + " x " +
                                                std::to_string(b) + " results overflow");
  }
}

}  // namespace

CandidateView::CandidateView(MatrixView rows, std::span<const float> squared_norms)
    : rows_(rows), squared_norms_(squared_norms) {
  if (squared_norms.size() != rows.rows()) {
    throw Error(ErrorCode::InvalidArgument,
                "candidates: " + std::to_string(squared_norms.size()) + " squared norms for " +
                    std::to_string(rows.rows()) + " rows");
  }
}

CandidateView CandidateView::slice(std::size_t first, std::size_t count) const {
  const MatrixView rows = rows_.slice(first, count);  // checks the range
  if (squared_norms_.empty()) return CandidateView(rows);
  return CandidateView(rows, squared_norms_.subspan(first, count));
}

SimilarityEngine::SimilarityEngine(SimilarityOptions options)
    : impl_(
          std::make_unique<Impl>(options.isa ? *options.isa : default_isa(), options.gpu_precision,
                                 options.quantize_queries,
                                 options.amx_kernels ? *options.amx_kernels : cpu::amx_requested(),
                                 std::move(options.resources))) {}

SimilarityEngine::~SimilarityEngine() = default;

Isa SimilarityEngine::isa() const noexcept { return impl_->isa; }
bool SimilarityEngine::quantize_queries() const noexcept { return impl_->quantize_queries; }
bool SimilarityEngine::amx_kernels() const noexcept { return impl_->amx_kernels; }
std::size_t SimilarityEngine::cpu_threads() const noexcept { return impl_->tiers.threads(); }
const std::shared_ptr<Resources>& SimilarityEngine::resources() const noexcept {
  return impl_->resources;
}

Matrix SimilarityEngine::scores(MatrixView queries, MatrixView candidates, Metric metric,
                                std::optional<Tier> tier) const {
  return scores(queries, CandidateView(candidates), metric, tier);
}

Matrix SimilarityEngine::scores(MatrixView queries, CandidateView set, Metric metric,
                                std::optional<Tier> tier) const {
  const MatrixView candidates = set.rows();
  check_same_dim(queries, candidates);
  check_product(queries.rows(), candidates.rows(), sizeof(float), "scores");
  const bool parallel = impl_->parallel_for(
      tier ? *tier : impl_->place(queries.rows(), candidates.rows(), queries.dim(), true));
  Matrix out(queries.rows(), candidates.rows());
  impl_->tiers.scores(queries, candidates, sq_norms_of(set), metric, parallel, out.data(),
                      out.stride());
  return out;
}

Hits SimilarityEngine::search(MatrixView queries, MatrixView candidates, std::size_t k,
                              Metric metric, std::optional<Tier> tier) const {
  return search(queries, CandidateView(candidates), k, metric, tier);
}

Hits SimilarityEngine::search(MatrixView queries, CandidateView set, std::size_t k, Metric metric,
                              std::optional<Tier> tier) const {
  const MatrixView candidates = set.rows();
  const float* sq_norms = sq_norms_of(set);
  check_same_dim(queries, candidates);
  if (candidates.rows() > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())) {
    throw Error(ErrorCode::InvalidArgument,
                "candidates: " + std::to_string(candidates.rows()) + " rows exceed int64 ids");
  }
  const std::size_t kept = k < candidates.rows() ? k : candidates.rows();
  check_product(queries.rows(), kept, sizeof(float) + sizeof(std::int64_t), "search");
  const Tier chosen =
      tier ? *tier : impl_->place(queries.rows(), candidates.rows(), queries.dim(), false);
  if (chosen == Tier::Gpu) {
    gpu::GpuTier& gpu = impl_->available_gpu();
    if (kept == 0 || queries.rows() == 0) return Hits(queries.rows(), 0);
    if (auto hits = gpu.search(queries, candidates, kept, metric, impl_->gpu_precision))
      return std::move(*hits);
    // Out of device memory (counted in gpu_stats().oom_fallbacks): the CPU tier answers.
    return impl_->tiers.search(queries, candidates, sq_norms, kept, metric, true);
  }
  const bool parallel = impl_->parallel_for(chosen);
  if (kept == 0 || queries.rows() == 0) return Hits(queries.rows(), 0);
  return impl_->tiers.search(queries, candidates, sq_norms, kept, metric, parallel);
}

CandidateSet SimilarityEngine::candidate_set(Matrix rows) const {
  std::vector<float> norms = squared_norms(rows.view());
  return CandidateSet(std::move(rows), std::move(norms));
}

std::vector<float> SimilarityEngine::squared_norms(MatrixView rows) const {
  // As much work as one query scanning the rows, and placed like it.
  const bool parallel =
      impl_->parallel_for(impl_->place(1, rows.rows(), rows.dim(), /*host_only=*/true));
  std::vector<float> norms(rows.rows());
  impl_->tiers.squared_norms(rows, parallel, norms.data());
  return norms;
}

bool SimilarityEngine::gpu_available() const noexcept {
  return impl_->core.available_gpu() != nullptr;
}

GpuStats SimilarityEngine::gpu_stats() const { return impl_->core.gpu().stats(); }

DeviceMatrix SimilarityEngine::upload(MatrixView candidates,
                                      std::optional<Precision> precision) const {
  gpu::GpuTier& gpu = impl_->available_gpu();
  DeviceMatrix out;
  out.rows_ = gpu.upload(candidates, precision.value_or(impl_->gpu_precision));
  return out;
}

Hits SimilarityEngine::search(MatrixView queries, const DeviceMatrix& candidates, std::size_t k,
                              Metric metric) const {
  if (candidates.empty())
    throw Error(ErrorCode::InvalidArgument, "search: the DeviceMatrix is empty (not uploaded)");
  if (queries.dim() != candidates.dim() && queries.rows() > 0) {
    throw Error(ErrorCode::DimensionMismatch, "queries have dim " + std::to_string(queries.dim()) +
                                                  " but candidates have dim " +
                                                  std::to_string(candidates.dim()));
  }
  gpu::GpuTier& gpu = impl_->available_gpu();
  const std::size_t kept = std::min(k, candidates.rows());
  check_product(queries.rows(), kept, sizeof(float) + sizeof(std::int64_t), "search");
  if (kept == 0 || queries.rows() == 0) return Hits(queries.rows(), 0);
  if (auto hits = gpu.search(queries, *candidates.rows_, kept, metric)) return std::move(*hits);
  const Matrix host = gpu.download(*candidates.rows_);
  return impl_->tiers.search(queries, host.view(), nullptr, kept, metric, true);
}

std::size_t DeviceMatrix::rows() const noexcept { return rows_ ? rows_->rows : 0; }
std::size_t DeviceMatrix::dim() const noexcept { return rows_ ? rows_->dim : 0; }
Precision DeviceMatrix::precision() const noexcept {
  return rows_ ? rows_->precision : Precision::F32;
}
std::size_t DeviceMatrix::device_bytes() const noexcept { return rows_ ? rows_->bytes : 0; }

std::vector<float> SimilarityEngine::batch_similarity_search(std::span<const float> query,
                                                             MatrixView candidates, Metric metric,
                                                             std::optional<Tier> tier) const {
  if (query.size() != candidates.dim() && candidates.rows() > 0) {
    throw Error(ErrorCode::DimensionMismatch, "query has " + std::to_string(query.size()) +
                                                  " values but candidates have dim " +
                                                  std::to_string(candidates.dim()));
  }
  const bool parallel =
      impl_->parallel_for(tier ? *tier : impl_->place(1, candidates.rows(), query.size(), true));
  std::vector<float> out(candidates.rows());
  if (candidates.rows() == 0) return out;
  const MatrixView one(query.data(), 1, query.size());
  impl_->tiers.scores(one, candidates, nullptr, metric, parallel, out.data(), out.size());
  return out;
}

}  // namespace hetcache
