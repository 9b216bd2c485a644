#include "compute/cuda/gpu_context.hpp"

#include <algorithm>

#include "compute/cuda/cuda_check.hpp"

namespace hetcache::gpu {

std::shared_ptr<GpuContext> GpuContext::open(const GpuOptions& options, std::string& why_not) {
  int count = 0;
  const cudaError_t probe = cudaGetDeviceCount(&count);
  if (probe != cudaSuccess) {
    why_not = std::string("no CUDA device (cudaGetDeviceCount: ") + cudaGetErrorName(probe) + ")";
    (void)cudaGetLastError();
    return nullptr;
  }
  if (count == 0) {
    why_not = "no CUDA device";
    return nullptr;
  }
  if (options.device < 0 || options.device >= count) {
    why_not = "GpuOptions::device is " + std::to_string(options.device) + " but there are " +
              std::to_string(count) + " CUDA devices";
    return nullptr;
  }
  std::shared_ptr<GpuContext> ctx(new GpuContext());
  ctx->device_ = options.device;
  ctx->make_current();
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, ctx->device_), "cudaGetDeviceProperties");
  std::size_t free_bytes = 0, total_bytes = 0;
  check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  ctx->description_ = std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
                      std::to_string(prop.minor) + ", " + std::to_string(total_bytes >> 30) +
                      " GiB)";
  ctx->budget_ = options.memory_budget_bytes != 0
                     ? options.memory_budget_bytes
                     : std::min<std::size_t>(free_bytes / 4, std::size_t{4} << 30);
  const std::size_t recommended = (prop.major >= 9 ? std::size_t{32} : std::size_t{4}) << 20;
  ctx->workspace_bytes_ = std::min(recommended, ctx->budget_ / 8) / kAlign * kAlign;
  ctx->reserved_ = kStreams * ctx->workspace_bytes_;
  for (int i = 0; i < kStreams; ++i) {
    check(cudaStreamCreateWithFlags(&ctx->streams_[i], cudaStreamNonBlocking),
          "cudaStreamCreateWithFlags");
    check(cublasCreate(&ctx->blas_[i]), "cublasCreate");
    check(cublasSetStream(ctx->blas_[i], ctx->streams_[i]), "cublasSetStream");
    // Exact f32 unless a search asks for TF32 through its compute type.
    check(cublasSetMathMode(ctx->blas_[i], CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    check(cudaMallocHost(reinterpret_cast<void**>(&ctx->pinned_[i]), kPinnedBytes),
          "cudaMallocHost");
  }
  return ctx;
}

GpuContext::~GpuContext() {
  // Errors here cannot be reported (a destructor); the device is left as clean as it lets us.
  cudaSetDevice(device_);
  for (int i = 0; i < kStreams; ++i) {
    if (streams_[i] != nullptr) cudaStreamSynchronize(streams_[i]);
    if (blas_[i] != nullptr) cublasDestroy(blas_[i]);  // before its stream goes
  }
  for (int i = 0; i < kStreams; ++i) {
    if (pinned_[i] != nullptr) cudaFreeHost(pinned_[i]);
    if (streams_[i] != nullptr) cudaStreamDestroy(streams_[i]);
  }
  if (scratch_ != nullptr) cudaFree(scratch_);
}

void GpuContext::make_current() const { check(cudaSetDevice(device_), "cudaSetDevice"); }

void GpuContext::reset_scratch() {
  if (scratch_ == nullptr) {
    check(cudaMalloc(&scratch_, budget_), "cudaMalloc(memory budget)");
    // cuBLAS would otherwise take each handle's workspace outside the budget.
    for (int i = 0; i < kStreams; ++i) {
      check(cublasSetWorkspace(blas_[i], static_cast<char*>(scratch_) + i * workspace_bytes_,
                               workspace_bytes_),
            "cublasSetWorkspace");
    }
  }
  used_ = reserved_;
}

void* GpuContext::take(std::size_t bytes) {
  const std::size_t start = (used_ + kAlign - 1) / kAlign * kAlign;
  if (start + bytes > budget_) {
    throw GpuOutOfMemory("GPU search needs more than the " + std::to_string(scratch_bytes() >> 20) +
                         " MiB of scratch GpuOptions::memory_budget_bytes leaves");
  }
  used_ = start + bytes;
  return static_cast<char*>(scratch_) + start;
}

}  // namespace hetcache::gpu
