// Private to src/: the Sequential and Cpu (oneTBB) tiers of similarity compute.
#pragma once

#include <hetcache/matrix.hpp>
#include <hetcache/similarity.hpp>

#include <oneapi/tbb/task_arena.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "compute/cpu/kernel_abi.hpp"

namespace hetcache::cpu {

// The kernels' metric and row types for the API's (shared by the f32 and compact searches).
MetricKind kind_of(Metric metric);
inline Rows rows_of(MatrixView v) { return Rows{v.data(), v.rows(), v.dim(), v.stride()}; }

// Runs the kernels of one ISA either on the calling thread or on the Resources' oneTBB arena
// (handed in; this class owns no threads). Both paths
// compute every score with the same instructions and merge top-k lists under a total order, so
// their results are bit-identical. Inputs must already be validated (see SimilarityEngine).
class CpuTiers {
 public:
  CpuTiers(const KernelTable& kernels, tbb::task_arena& arena, std::size_t threads);

  std::size_t threads() const noexcept { return threads_; }

  // k must be >= 1 and <= candidates.rows(); queries.dim() == candidates.dim().
  // candidate_sq_norms: |c|^2 of each candidate (from squared_norms), or null to compute them
  // while scanning; unused for Dot.
  Hits search(MatrixView queries, MatrixView candidates, const float* candidate_sq_norms,
              std::size_t k, Metric metric, bool parallel) const;

  // Scores (squared distances for L2) into out[q * ld + c].
  void scores(MatrixView queries, MatrixView candidates, const float* candidate_sq_norms,
              Metric metric, bool parallel, float* out, std::size_t ld) const;

  // out[i] = |rows[i]|^2, summed as this ISA sums a dot product.
  void squared_norms(MatrixView rows, bool parallel, float* out) const;

 private:
  // The queries' terms of the metric (see Problem): 1/|x| for Cosine, |x|^2 for L2. The kernels
  // derive the candidates' terms themselves, block by block.
  std::vector<float> query_terms(MatrixView queries, MetricKind metric, bool parallel) const;

  const KernelTable& kernels_;
  tbb::task_arena& arena_;
  std::size_t threads_;
};

}  // namespace hetcache::cpu
