// Private to src/: the Sequential and Cpu (oneTBB) tiers of similarity compute.
#pragma once

#include <hetcache/matrix.hpp>
#include <hetcache/similarity.hpp>

#include <oneapi/tbb/task_arena.h>

#include <cstddef>
#include <memory>

#include "compute/cpu/kernel_abi.hpp"

namespace hetcache::cpu {

// Runs the kernels of one ISA either on the calling thread or on the Resources' oneTBB arena
// (handed in; this class owns no threads). Both paths
// compute every score with the same instructions and merge top-k lists under a total order, so
// their results are bit-identical. Inputs must already be validated (see SimilarityEngine).
class CpuTiers {
 public:
  CpuTiers(const KernelTable& kernels, tbb::task_arena& arena, std::size_t threads);

  std::size_t threads() const noexcept { return threads_; }

  // k must be >= 1 and <= candidates.rows(); queries.dim() == candidates.dim().
  Hits search(MatrixView queries, MatrixView candidates, std::size_t k, Metric metric,
              bool parallel) const;

  // Scores (squared distances for L2) into out[q * ld + c].
  void scores(MatrixView queries, MatrixView candidates, Metric metric, bool parallel, float* out,
              std::size_t ld) const;

 private:
  const KernelTable& kernels_;
  tbb::task_arena& arena_;
  std::size_t threads_;
};

}  // namespace hetcache::cpu
