// Private: the contract between the library and its CUDA plugin, libhetcache_cuda.so (built from
// src/compute/cuda/ when a CUDA toolkit is found). The library links no CUDA library; the plugin
// links cuBLAS and is loaded with dlopen the first time a Resources asks for the GPU tier
// (gpu_plugin_loader.cpp), so one build runs on CPU-only machines and GPU ones alike.
//
// The plugin exports one C symbol, kGpuPluginEntry, returning its GpuPlugin. GpuTier, Hits, Matrix
// and Error cross the boundary as C++ objects, so the plugin must come from the same build as the
// library: `abi` is HETCACHE_GPU_PLUGIN_ABI, the version and a hash of the headers that define
// those types and of the compiler (CMakeLists.txt); the loader refuses any other value.
#pragma once

#include <memory>

#include "compute/gpu/gpu_tier.hpp"

namespace hetcache::gpu {

inline constexpr const char* kGpuPluginEntry = "hetcache_gpu_plugin";
inline constexpr const char* kGpuPluginFile = "libhetcache_cuda.so";

struct GpuPlugin {
  const char* abi;  // HETCACHE_GPU_PLUGIN_ABI of the build that made the plugin
  // Never throws for a missing device or driver: the tier then reports itself absent.
  std::unique_ptr<GpuTier> (*make)(const GpuOptions& options);
};

using GpuPluginEntry = const GpuPlugin* (*)();

}  // namespace hetcache::gpu
