// Private: one CUDA device as the GPU tier uses it -- the device, two streams (each with its cuBLAS
// handle; tile i on stream i % 2, so one tile's copy overlaps the other's compute), the memory
// budget allocated once (cuBLAS workspaces, then scratch carved per search), and two pinned
// staging buffers.
// Searches on one context take its mutex (they share the scratch).
#pragma once

#include <hetcache/similarity.hpp>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#include "compute/cuda/tile_plan.hpp"

namespace hetcache::gpu {

class GpuContext {
 public:
  static constexpr int kStreams = 2;
  static constexpr std::size_t kPinnedBytes = kPinnedStagingBytes;  // per stream
  static constexpr std::size_t kAlign = 256;  // of every piece taken (the plans' slack assumes it)

  // nullptr with why_not set when there is no usable device.
  static std::shared_ptr<GpuContext> open(const GpuOptions& options, std::string& why_not);
  ~GpuContext();
  GpuContext(const GpuContext&) = delete;
  GpuContext& operator=(const GpuContext&) = delete;

  int device() const noexcept { return device_; }
  const std::string& description() const noexcept { return description_; }
  std::size_t budget() const noexcept { return budget_; }
  void make_current() const;

  // One cuBLAS handle per stream: a handle's workspace must not be shared by concurrent GEMMs.
  cublasHandle_t blas(int stream) const noexcept { return blas_[stream]; }
  cudaStream_t stream(int i) const noexcept { return streams_[i]; }
  float* pinned(int i) const noexcept { return pinned_[i]; }

  // The budget is one allocation: each cuBLAS handle's workspace (the size NVIDIA recommends: 32
  // MiB on sm_90 and later, 4 MiB before, at most an eighth of the budget each), then the scratch.
  // Carves scratch for one search (or one upload): reset, then take() aligned pieces. Allocates
  // the budget on first use (GpuOutOfMemory when the device cannot give it); take() throws
  // GpuOutOfMemory when the search needs more than the scratch.
  void reset_scratch();
  void* take(std::size_t bytes);
  std::size_t scratch_bytes() const noexcept { return budget_ - reserved_; }
  template <typename T>
  T* take(std::size_t count) {
    return static_cast<T*>(take(count * sizeof(T)));
  }

  std::mutex& mutex() noexcept { return mutex_; }

 private:
  GpuContext() = default;

  int device_ = 0;
  std::string description_;
  std::size_t budget_ = 0;
  std::size_t workspace_bytes_ = 0;  // per cuBLAS handle
  std::size_t reserved_ = 0;         // the workspaces at the start of the allocation
  cublasHandle_t blas_[kStreams] = {};
  cudaStream_t streams_[kStreams] = {};
  float* pinned_[kStreams] = {};
  void* scratch_ = nullptr;
  std::size_t used_ = 0;
  std::mutex mutex_;
};

}  // namespace hetcache::gpu
