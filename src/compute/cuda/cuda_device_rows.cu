// The CUDA GPU tier's device-resident candidate sets: allocated, written (converted to bf16 / f16
// through the scratch, with their norms), and read back for a CPU fallback.
#include <hetcache/error.hpp>

#include <cuda_fp16.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "compute/cuda/cuda_check.hpp"
#include "compute/cuda/cuda_gpu_tier.hpp"

namespace hetcache::gpu {

std::shared_ptr<detail::DeviceRows> CudaGpuTier::upload(MatrixView candidates, Precision p) {
  auto set = allocate(candidates.rows(), candidates.dim(), p);
  write_rows(*set, 0, candidates);
  return set;
}

std::shared_ptr<detail::DeviceRows> CudaGpuTier::allocate(std::size_t n, std::size_t dim,
                                                          Precision p) {
  if (dim == 0) throw Error(ErrorCode::InvalidArgument, "upload needs vectors of dim >= 1");
  std::lock_guard lock(ctx_->mutex());
  ctx_->make_current();
  auto set = std::make_shared<detail::DeviceRows>();
  set->rows = n;
  set->dim = dim;
  set->precision = p;
  set->bytes = n * dim * element_bytes(p) + n * sizeof(float);
  set->data = device_memory(n * dim * element_bytes(p), "cudaMalloc(candidates)");
  set->norms = device_memory(n * sizeof(float), "cudaMalloc(norms)");
  return set;
}

std::shared_ptr<void> CudaGpuTier::device_memory(std::size_t bytes, const char* what) {
  void* ptr = nullptr;
  check(cudaMalloc(&ptr, std::max<std::size_t>(bytes, 1)), what);
  return std::shared_ptr<void>(ptr, [ctx = ctx_](void* q) {
    cudaSetDevice(ctx->device());  // a destructor cannot report a failure
    cudaFree(q);
  });
}

void CudaGpuTier::write_rows(detail::DeviceRows& set, std::size_t first, MatrixView rows) {
  const std::size_t n = rows.rows(), dim = set.dim;
  if (rows.dim() != dim || first > set.rows || n > set.rows - first) {
    throw Error(ErrorCode::InvalidArgument,
                "write_rows: rows [" + std::to_string(first) + ", " + std::to_string(first + n) +
                    ") of dim " + std::to_string(rows.dim()) + " do not fit a device set of " +
                    std::to_string(set.rows) + " x " + std::to_string(dim));
  }
  if (n == 0) return;
  std::lock_guard lock(ctx_->mutex());
  if (lost_.load()) throw Error(ErrorCode::GpuError, "write_rows: " + stats().reason);
  ctx_->make_current();
  try {
    copy_rows(set, first, rows);
  } catch (...) {
    settle();  // no copy may still read the caller's rows or the scratch
    if (auto why = device_lost()) lose(*why);
    throw;
  }
}

void CudaGpuTier::copy_rows(detail::DeviceRows& set, std::size_t first, MatrixView rows) {
  const std::size_t n = rows.rows(), dim = set.dim;
  const Precision p = set.precision;
  char* base = static_cast<char*>(set.data.get()) + first * dim * element_bytes(p);
  cudaStream_t s0 = ctx_->stream(0);
  if (!is_half(p)) {
    check(cudaMemcpy2DAsync(base, dim * sizeof(float), rows.data(), rows.stride() * sizeof(float),
                            dim * sizeof(float), n, cudaMemcpyHostToDevice, s0),
          "cudaMemcpy2DAsync(upload)");
  } else {
    // Through f32 chunks in the scratch (at most 64 MiB, at most the scratch), converted into
    // place: no allocation per call.
    ctx_->reset_scratch();
    const std::size_t row_bytes = dim * sizeof(float);
    const std::size_t chunk_rows =
        std::min(n, std::min(std::size_t{64} << 20, ctx_->scratch_bytes()) / row_bytes);
    if (chunk_rows == 0) {
      throw GpuOutOfMemory("write_rows: a row of dim " + std::to_string(dim) +
                           " is larger than the GPU scratch");
    }
    float* chunk = ctx_->take<float>(chunk_rows * dim);
    for (std::size_t r = 0; r < n; r += chunk_rows) {
      const std::size_t count = std::min(chunk_rows, n - r);
      check(cudaMemcpy2DAsync(chunk, row_bytes, rows.data() + r * rows.stride(),
                              rows.stride() * sizeof(float), row_bytes, count,
                              cudaMemcpyHostToDevice, s0),
            "cudaMemcpy2DAsync(upload)");
      convert(chunk, count * dim, base + r * dim * 2, p, s0);
    }
  }
  bytes_to_device_.fetch_add(n * dim * sizeof(float));
  launch_row_sq_norms(base, p, n, dim, static_cast<float*>(set.norms.get()) + first, s0);
  check(cudaStreamSynchronize(s0), "cudaStreamSynchronize");
}

Matrix CudaGpuTier::download(const detail::DeviceRows& set) {
  std::lock_guard lock(ctx_->mutex());
  ctx_->make_current();
  Matrix out(set.rows, set.dim);
  if (!is_half(set.precision)) {
    check(cudaMemcpy2D(out.data(), out.stride() * sizeof(float), set.data.get(),
                       set.dim * sizeof(float), set.dim * sizeof(float), set.rows,
                       cudaMemcpyDeviceToHost),
          "cudaMemcpy2D(download)");
    return out;
  }
  std::vector<std::uint16_t> raw(set.rows * set.dim);
  check(cudaMemcpy(raw.data(), set.data.get(), raw.size() * 2, cudaMemcpyDeviceToHost),
        "cudaMemcpy(download)");
  for (std::size_t r = 0; r < set.rows; ++r) {
    for (std::size_t j = 0; j < set.dim; ++j) {
      const std::uint16_t bits = raw[r * set.dim + j];
      float v;
      if (set.precision == Precision::Bf16) {
        const std::uint32_t wide = std::uint32_t{bits} << 16;
        std::memcpy(&v, &wide, sizeof v);
      } else {
        __half_raw raw_half;
        raw_half.x = bits;
        v = __half2float(__half(raw_half));
      }
      out.row(r)[j] = v;
    }
  }
  return out;
}

}  // namespace hetcache::gpu
