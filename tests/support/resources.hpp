// Resources for tests: one CPU-only set shared by every test of a binary (as a program shares one
// set), and sets with a given number of arena threads. Never destroyed, like Resources::shared():
// at exit Boost.Fiber's per-thread state may already be gone when static destructors run.
#pragma once

#include <hetcache/resources.hpp>

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>

namespace hetcache::test {

inline std::shared_ptr<Resources> immortal(ResourcesOptions options) {
  return std::shared_ptr<Resources>(new Resources(options), [](Resources*) {});
}

// GPU disabled: decisions and results do not depend on whether this machine has a device.
inline std::shared_ptr<Resources> cpu_only_resources() {
  static const auto resources = immortal(ResourcesOptions{.gpu = GpuOptions{.enable = false}});
  return resources;
}

// GPU disabled and a 2-thread arena: the scheduler's built-in estimates divide work by the arena's
// threads, so its tests decide the same on a 2-vCPU guest and on a 16-core GPU host.
inline std::shared_ptr<Resources> two_thread_cpu_only_resources() {
  static const auto resources =
      immortal(ResourcesOptions{.cpu_threads = 2, .gpu = GpuOptions{.enable = false}});
  return resources;
}

// One shared set per arena size (tests that compare thread counts).
inline std::shared_ptr<Resources> resources_with_cpu_threads(std::size_t threads) {
  static std::mutex mutex;
  static auto& made = *new std::map<std::size_t, std::shared_ptr<Resources>>();
  std::lock_guard lock(mutex);
  auto& r = made[threads];
  if (!r) {
    r = immortal(ResourcesOptions{.fiber_threads = 1, .io_threads = 1, .cpu_threads = threads});
  }
  return r;
}

}  // namespace hetcache::test
