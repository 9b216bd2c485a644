// Private: the parts of a Resources that src/ runs work on directly -- the oneTBB arena and the GPU
// tier. Defined here, not in the public header, so no TBB or GPU type reaches the API.
#pragma once

#include <hetcache/resources.hpp>

#include <oneapi/tbb/task_arena.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>

#include "compute/gpu/gpu_tier.hpp"

namespace hetcache::detail {

struct ResourcesCore {
  ResourcesCore(std::size_t threads, const GpuOptions& gpu);
  ResourcesCore(const ResourcesCore&) = delete;
  ResourcesCore& operator=(const ResourcesCore&) = delete;

  std::size_t cpu_threads;
  tbb::task_arena arena;  // the one CPU arena
  GpuOptions gpu_options;

  // The GPU tier, opened on first use (opening CUDA costs a few hundred ms that CPU-only work
  // never pays); absent, with the reason, where there is none.
  gpu::GpuTier& gpu() const;
  // The GPU tier when it has a device, else nullptr (never throws).
  gpu::GpuTier* available_gpu() const noexcept;

 private:
  mutable std::once_flag gpu_once_;
  mutable std::unique_ptr<gpu::GpuTier> gpu_;
};

}  // namespace hetcache::detail
