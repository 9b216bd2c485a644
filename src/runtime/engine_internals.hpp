// Private: what other parts of the library reach inside a SimilarityEngine for.
#pragma once

#include <hetcache/similarity.hpp>

#include "gpu/gpu_tier.hpp"

namespace hetcache {

struct EngineInternals {
  // The engine's GPU tier when it has a device (created on first use), else nullptr.
  static gpu::GpuTier* available_gpu(const SimilarityEngine& engine) noexcept;
};

}  // namespace hetcache
