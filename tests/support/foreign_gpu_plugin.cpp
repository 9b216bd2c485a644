// Plugins the loader must refuse (tests/gpu_plugin_test.sh): built with HETCACHE_TEST_PLUGIN_ABI
// set to another build's ABI string, or linked against a library that is not there at run time
// (as the real plugin is where cuBLAS is missing).
#include <memory>

#include "compute/gpu/gpu_plugin.hpp"

#if defined(HETCACHE_TEST_NEEDS_DEPENDENCY)
extern "C" int hetcache_test_dependency();
#endif

namespace {

std::unique_ptr<hetcache::gpu::GpuTier> make(const hetcache::GpuOptions&) {
#if defined(HETCACHE_TEST_NEEDS_DEPENDENCY)
  if (hetcache_test_dependency() != 0) return nullptr;
#endif
  return nullptr;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const hetcache::gpu::GpuPlugin*
hetcache_gpu_plugin() {
  static const hetcache::gpu::GpuPlugin plugin{HETCACHE_TEST_PLUGIN_ABI, &make};
  return &plugin;
}
