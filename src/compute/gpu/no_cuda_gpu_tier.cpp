// make_gpu_tier in a build without CUDA (HETCACHE_CUDA=OFF, or no toolkit found).
#include "compute/gpu/gpu_tier.hpp"

namespace hetcache::gpu {

std::unique_ptr<GpuTier> make_gpu_tier(const GpuOptions& options) {
  if (!options.enable) return make_absent_gpu_tier("disabled (GpuOptions::enable is false)");
  return make_absent_gpu_tier("this build has no CUDA (configure with HETCACHE_CUDA=ON)");
}

}  // namespace hetcache::gpu
