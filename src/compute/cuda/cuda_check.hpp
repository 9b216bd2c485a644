// Private: every CUDA runtime and cuBLAS call goes through check(); a failure becomes
// hetcache::Error(GpuError) naming the call and the code, and running out of device memory becomes
// GpuOutOfMemory, which the search turns into a CPU fallback.
#pragma once

#include <hetcache/error.hpp>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "compute/gpu/gpu_tier.hpp"

namespace hetcache::gpu {

inline void check(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  const std::string message = std::string(call) + " failed: " + cudaGetErrorName(status) + " (" +
                              cudaGetErrorString(status) + ")";
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // clear the sticky-free error so the context stays usable
    throw GpuOutOfMemory(message);
  }
  throw Error(ErrorCode::GpuError, message);
}

inline void check(cublasStatus_t status, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  const std::string message = std::string(call) + " failed: " + cublasGetStatusName(status) + " (" +
                              cublasGetStatusString(status) + ")";
  if (status == CUBLAS_STATUS_ALLOC_FAILED) throw GpuOutOfMemory(message);
  throw Error(ErrorCode::GpuError, message);
}

// A kernel launch reports bad configurations at once and faults at the next synchronisation.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

}  // namespace hetcache::gpu
