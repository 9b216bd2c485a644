// Private: how an operation is described to a Scheduler (its Work) and how it ran (its
// Execution) -- one definition for the scheduler's own operations, the cache's placed ones and
// the engine's call without a tier.
#pragma once

#include <hetcache/placement.hpp>
#include <hetcache/scheduler.hpp>
#include <hetcache/similarity.hpp>

#include <algorithm>
#include <cstddef>

namespace hetcache::scheduler {

// A top-k search or scoring of queries x candidates x dim (each at least 1).
inline Work similarity_work(std::size_t queries, std::size_t candidates, std::size_t dim) {
  Work w;
  w.op = OpKind::Similarity;
  w.items = std::max<std::size_t>(candidates, 1);
  w.queries = std::max<std::size_t>(queries, 1);
  w.dim = std::max<std::size_t>(dim, 1);
  return w;
}

// A cache call of n keys: `one` for a single key, `batch` otherwise.
inline Work cache_work(OpKind one, OpKind batch, std::size_t keys, std::size_t dim, bool durable) {
  Work w;
  w.op = keys == 1 ? one : batch;
  w.items = std::max<std::size_t>(keys, 1);
  w.dim = dim;
  w.durable = durable;
  return w;
}

// A chunked batch ran in parallel only if it had more than one chunk and more than one thread.
inline Execution batch_execution(Tier tier, std::size_t keys, std::size_t chunk,
                                 std::size_t threads) {
  Execution e;
  e.parallel = (tier == Tier::Fiber || tier == Tier::Cpu) && keys > chunk && threads > 1;
  return e;
}

// Similarity compute on `tier` by this engine: parallel on the GPU or a multi-thread arena, SIMD
// on the CPU unless the engine runs the scalar kernels.
inline Execution compute_execution(Tier tier, const SimilarityEngine& engine) {
  Execution e;
  e.parallel = tier == Tier::Gpu || (tier == Tier::Cpu && engine.cpu_threads() > 1);
  e.simd = tier != Tier::Gpu && engine.isa() != Isa::Scalar;
  return e;
}

}  // namespace hetcache::scheduler
