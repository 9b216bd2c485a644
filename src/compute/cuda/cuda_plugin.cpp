// The entry point of libhetcache_cuda.so (compute/gpu/gpu_plugin.hpp): everything else in the
// plugin is hidden, so its copies of the core types' code never interpose on the host's.
#include "compute/gpu/gpu_plugin.hpp"

namespace hetcache::gpu {
std::unique_ptr<GpuTier> make_cuda_gpu_tier(const GpuOptions& options);  // cuda_gpu_tier.cu
}

extern "C" __attribute__((visibility("default"))) const hetcache::gpu::GpuPlugin*
hetcache_gpu_plugin() {
  static const hetcache::gpu::GpuPlugin plugin{HETCACHE_GPU_PLUGIN_ABI,
                                                &hetcache::gpu::make_cuda_gpu_tier};
  return &plugin;
}
