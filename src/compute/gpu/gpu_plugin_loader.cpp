// make_gpu_tier: finds and loads the CUDA plugin (gpu_plugin.hpp) once per process. No plugin, a
// plugin that cannot be loaded (no cuBLAS, no driver library), one from another build, or no device
// -> the absent tier, whose reason says exactly which. The plugin is never unloaded: device sets
// and tiers it made may live until the process ends.
//
// Where it looks, first found wins: $HETCACHE_GPU_PLUGIN (a file; when set, only there); the
// directory of the binary that holds this library (the program, libhetcache.so or the Python
// module), its parent and its ../lib (a build tree's tools/, tests/ and bench/, an installed bin/);
// the install's library directory.
#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <hetcache/hetcache.hpp>

#include "compute/gpu/gpu_plugin.hpp"

namespace hetcache::gpu {
namespace {

struct Loaded {
  const GpuPlugin* plugin = nullptr;
  std::string reason;  // why there is none
};

// The file this function was linked into: the main program's link map entry has an empty name.
std::filesystem::path this_binary() {
  static const char anchor = 0;
  Dl_info info{};
  link_map* map = nullptr;
  if (dladdr1(&anchor, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) == 0 ||
      map == nullptr || map->l_name == nullptr || map->l_name[0] == '\0') {
    std::error_code ec;
    return std::filesystem::read_symlink("/proc/self/exe", ec);
  }
  return map->l_name;
}

std::vector<std::filesystem::path> candidates() {
  std::vector<std::filesystem::path> paths;
  const std::filesystem::path dir = this_binary().parent_path();
  if (!dir.empty()) {
    paths.push_back(dir / kGpuPluginFile);
    paths.push_back(dir.parent_path() / kGpuPluginFile);
    paths.push_back(dir.parent_path() / "lib" / kGpuPluginFile);
  }
  paths.push_back(std::filesystem::path(HETCACHE_INSTALL_LIBDIR) / kGpuPluginFile);
  return paths;
}

Loaded open_plugin(const std::filesystem::path& path) {
  Loaded out;
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    out.reason = "the GPU plugin " + path.string() + " could not be loaded: " +
                 (why != nullptr ? why : "unknown dlopen error");
    return out;
  }
  const auto entry = reinterpret_cast<GpuPluginEntry>(dlsym(handle, kGpuPluginEntry));
  const GpuPlugin* plugin = entry != nullptr ? entry() : nullptr;
  if (plugin == nullptr || plugin->abi == nullptr || plugin->make == nullptr) {
    out.reason = path.string() + " is not a hetcache GPU plugin (no " + kGpuPluginEntry + ")";
  } else if (std::string(plugin->abi) != HETCACHE_GPU_PLUGIN_ABI) {
    out.reason = "the GPU plugin " + path.string() + " comes from another build (plugin ABI " +
                 plugin->abi + ", this library " + HETCACHE_GPU_PLUGIN_ABI +
                 "); install the plugin built with this library";
  } else {
    out.plugin = plugin;
    return out;  // kept loaded: its code runs until the process ends
  }
  dlclose(handle);
  return out;
}

Loaded find_plugin() {
  if (const char* chosen = std::getenv("HETCACHE_GPU_PLUGIN"); chosen != nullptr && *chosen) {
    std::error_code ec;
    if (!std::filesystem::exists(chosen, ec)) {
      return {nullptr,
              std::string("HETCACHE_GPU_PLUGIN names ") + chosen + ", which does not exist"};
    }
    return open_plugin(chosen);
  }
  std::string looked;
  for (const std::filesystem::path& path : candidates()) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) return open_plugin(path);
    looked += (looked.empty() ? "" : ", ") + path.parent_path().string();
  }
  return {nullptr, std::string("no GPU plugin (") + kGpuPluginFile + ") in " + looked +
                       (built_with_cuda()
                            ? "; install it beside the library, or set HETCACHE_GPU_PLUGIN"
                            : "; this build has no CUDA tier (configure with a CUDA toolkit)")};
}

}  // namespace

std::unique_ptr<GpuTier> make_gpu_tier(const GpuOptions& options) {
  if (!options.enable) return make_absent_gpu_tier("disabled (GpuOptions::enable is false)");
  static const Loaded loaded = find_plugin();
  if (loaded.plugin == nullptr) return make_absent_gpu_tier(loaded.reason);
  std::unique_ptr<GpuTier> tier = loaded.plugin->make(options);
  if (tier == nullptr) return make_absent_gpu_tier("the GPU plugin made no tier");
  return tier;
}

}  // namespace hetcache::gpu
