#include "compute/cuda/gpu_kernels.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cub/device/device_segmented_radix_sort.cuh>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "compute/cuda/cuda_check.hpp"
#include "compute/cuda/queue_select.hpp"
#include "compute/cuda/tile_plan.hpp"

namespace hetcache::gpu {

static_assert(kFewQueries == kScanMaxQueries,
              "the tile plan's few queries are those the scan kernel scores");

namespace {

constexpr int kBlock = 256;

unsigned blocks_for(std::size_t n) {
  return static_cast<unsigned>(std::min<std::size_t>((n + kBlock - 1) / kBlock, 65535u * 16));
}

// The select's block primitives on the device (the host test runs the same select serially).
struct CudaBlock {
  __host__ __device__ unsigned thread() const {
#if defined(__CUDA_ARCH__)
    return threadIdx.x;
#else
    return 0;
#endif
  }
  __host__ __device__ unsigned threads() const {
#if defined(__CUDA_ARCH__)
    return blockDim.x;
#else
    return 1;
#endif
  }
  __host__ __device__ void sync() const {
#if defined(__CUDA_ARCH__)
    __syncthreads();
#endif
  }
  template <typename T>
  __host__ __device__ T atomic_add(T& target, T value) const {
#if defined(__CUDA_ARCH__)
    return atomicAdd(&target, value);
#else
    const T before = target;
    target += value;
    return before;
#endif
  }
};

template <typename T>
__device__ inline float to_float(T v);
template <>
__device__ inline float to_float<float>(float v) {
  return v;
}
template <>
__device__ inline float to_float<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <>
__device__ inline float to_float<__half>(__half v) {
  return __half2float(v);
}

__global__ void to_bf16_kernel(const float* in, std::size_t n, __nv_bfloat16* out) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x)
    out[i] = __float2bfloat16_rn(in[i]);
}
__global__ void to_f16_kernel(const float* in, std::size_t n, __half* out) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x)
    out[i] = __float2half_rn(in[i]);
}

// One warp per row, grid-stride over rows.
template <typename T>
__global__ void row_sq_norms_kernel(const T* rows, std::size_t n, std::size_t dim, float* out) {
  const std::size_t warps = std::size_t{gridDim.x} * blockDim.x / 32;
  const unsigned lane = threadIdx.x % 32;
  for (std::size_t r = (blockIdx.x * std::size_t{blockDim.x} + threadIdx.x) / 32; r < n;
       r += warps) {
    const T* row = rows + r * dim;
    float sum = 0.0f;
    for (std::size_t j = lane; j < dim; j += 32) {
      const float v = to_float(row[j]);
      sum = fmaf(v, v, sum);
    }
    for (int offset = 16; offset > 0; offset /= 2)
      sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if (lane == 0) out[r] = sum;
  }
}

// The scan kernels' ends: each query's partial sums of this warp's row added across the lanes,
// and lane 0 storing them.
__device__ __forceinline__ void store_row_dots(const float (&sum)[kScanMaxQueries], int q_count,
                                               unsigned lane, float* dots, std::size_t ld,
                                               std::size_t row) {
#pragma unroll
  for (int q = 0; q < kScanMaxQueries; ++q) {
    if (q >= q_count) break;
    float s = sum[q];
    for (int offset = 16; offset > 0; offset /= 2) s += __shfl_down_sync(0xffffffffu, s, offset);
    if (lane == 0) dots[q * ld + row] = s;
  }
}

// The scan kernels' start: the queries (q_count x dim floats) copied to shared memory.
__device__ __forceinline__ void load_shared_queries(const float* queries, int q_count,
                                                    std::size_t dim, float* shared) {
  for (std::size_t i = threadIdx.x; i < q_count * dim; i += blockDim.x) shared[i] = queries[i];
  __syncthreads();
}

// One warp per candidate row; the queries (q_count x dim floats) in shared memory.
template <typename T>
__global__ void scan_dots_kernel(const float* queries, int q_count, std::size_t dim,
                                 const T* candidates, std::size_t rows, float* dots,
                                 std::size_t ld) {
  extern __shared__ float shared_queries[];
  load_shared_queries(queries, q_count, dim, shared_queries);
  const std::size_t warps_per_block = blockDim.x / 32;
  const unsigned lane = threadIdx.x % 32;
  for (std::size_t row = blockIdx.x * warps_per_block + threadIdx.x / 32; row < rows;
       row += std::size_t{gridDim.x} * warps_per_block) {
    float sum[kScanMaxQueries] = {};
    const T* c = candidates + row * dim;
    for (std::size_t j = lane; j < dim; j += 32) {
      const float v = to_float(c[j]);
#pragma unroll
      for (int q = 0; q < kScanMaxQueries; ++q)
        if (q < q_count) sum[q] = fmaf(shared_queries[q * dim + j], v, sum[q]);
    }
    store_row_dots(sum, q_count, lane, dots, ld, row);
  }
}

// 16 bytes of T (one uint4 load) as floats.
template <typename T>
struct Wide;
template <>
struct Wide<float> {
  static constexpr int kCount = 4;
  __device__ static void unpack(const uint4& raw, float* out) {
    out[0] = __uint_as_float(raw.x);
    out[1] = __uint_as_float(raw.y);
    out[2] = __uint_as_float(raw.z);
    out[3] = __uint_as_float(raw.w);
  }
};
template <>
struct Wide<__nv_bfloat16> {
  static constexpr int kCount = 8;
  __device__ static void unpack(const uint4& raw, float* out) {  // a bf16 is a float's top half
    const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = __uint_as_float(words[i] << 16);
      out[2 * i + 1] = __uint_as_float(words[i] & 0xFFFF0000u);
    }
  }
};
template <>
struct Wide<__half> {
  static constexpr int kCount = 8;
  __device__ static void unpack(const uint4& raw, float* out) {
    const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      __half2 pair;
      memcpy(&pair, &words[i], sizeof pair);
      const float2 f = __half22float2(pair);
      out[2 * i] = f.x;
      out[2 * i + 1] = f.y;
    }
  }
};

// scan_dots_kernel for rows of 16-byte multiples on a 16-byte aligned base: each lane reads 16
// bytes per load and issues kScanLoadsInFlight loads before using any. scan_dots_kernel's one
// 4-byte (2-byte) load per lane at a time keeps too few bytes in flight to cover the memory's
// latency: on an H200 a Q = 1 search of 1M x 768 took the same 2.25 ms in f32 and bf16 with it,
// 1.27 and 0.96 ms with this one (bench/results/gpu-2026-12-04.md).
constexpr int kScanLoadsInFlight = 4;
template <typename T>
__global__ void scan_dots_wide_kernel(const float* queries, int q_count, std::size_t dim,
                                      const T* candidates, std::size_t rows, float* dots,
                                      std::size_t ld) {
  using W = Wide<T>;
  extern __shared__ float shared_queries[];
  load_shared_queries(queries, q_count, dim, shared_queries);
  const std::size_t wides = dim / W::kCount;  // 16-byte pieces per row
  const std::size_t warps_per_block = blockDim.x / 32;
  const unsigned lane = threadIdx.x % 32;
  for (std::size_t row = blockIdx.x * warps_per_block + threadIdx.x / 32; row < rows;
       row += std::size_t{gridDim.x} * warps_per_block) {
    float sum[kScanMaxQueries] = {};
    const uint4* c = reinterpret_cast<const uint4*>(candidates + row * dim);
    for (std::size_t base = lane; base < wides; base += 32 * kScanLoadsInFlight) {
      uint4 raw[kScanLoadsInFlight];
#pragma unroll
      for (int u = 0; u < kScanLoadsInFlight; ++u) {
        const std::size_t w = base + u * 32;
        raw[u] = w < wides ? __ldcs(c + w) : make_uint4(0, 0, 0, 0);  // read once: streamed
      }
#pragma unroll
      for (int u = 0; u < kScanLoadsInFlight; ++u) {
        const std::size_t w = base + u * 32;
        if (w >= wides) break;
        float x[W::kCount];
        W::unpack(raw[u], x);
#pragma unroll
        for (int q = 0; q < kScanMaxQueries; ++q) {
          if (q >= q_count) break;
          const float4* qw =
              reinterpret_cast<const float4*>(shared_queries + q * dim) + w * (W::kCount / 4);
#pragma unroll
          for (int e = 0; e < W::kCount / 4; ++e) {
            const float4 v = qw[e];
            sum[q] = fmaf(v.x, x[4 * e], sum[q]);
            sum[q] = fmaf(v.y, x[4 * e + 1], sum[q]);
            sum[q] = fmaf(v.z, x[4 * e + 2], sum[q]);
            sum[q] = fmaf(v.w, x[4 * e + 3], sum[q]);
          }
        }
      }
    }
    store_row_dots(sum, q_count, lane, dots, ld, row);
  }
}

struct TileKeys {
  const float* dots;
  float query_norm;
  const float* candidate_norms;
  Metric metric;
  std::uint32_t first_id;
  __device__ std::uint64_t operator()(std::size_t i) const {
    const float cn = candidate_norms != nullptr ? candidate_norms[i] : 0.0f;
    return make_key(score_from_dot(dots[i], query_norm, cn, metric), metric,
                    first_id + static_cast<std::uint32_t>(i));
  }
};

// Block (q, c) selects from chunk c of the tile for query q.
__global__ void select_tile_kernel(const float* dots, std::size_t ld, std::size_t rows,
                                   std::uint32_t first_id, const float* query_norms,
                                   const float* candidate_norms, Metric metric,
                                   std::size_t chunk_rows, std::size_t keep, std::uint64_t* out,
                                   std::size_t out_ld) {
  const int q = blockIdx.x;
  const std::size_t chunk = blockIdx.y, first = chunk * chunk_rows;
  const std::size_t count = first < rows ? min(chunk_rows, rows - first) : 0;
  const TileKeys keys{dots + q * ld + first, query_norms != nullptr ? query_norms[q] : 0.0f,
                      candidate_norms != nullptr ? candidate_norms + first : nullptr, metric,
                      first_id + static_cast<std::uint32_t>(first)};
  __shared__ BestKeysShared shared;
  CudaBlock block;
  select_best(block, shared, keys, count, keep, keep, out + q * out_ld + chunk * keep);
}

struct ArrayKeys {
  const std::uint64_t* keys;
  __device__ std::uint64_t operator()(std::size_t i) const { return keys[i]; }
};

__global__ void select_keys_kernel(const std::uint64_t* keys, std::size_t ld, std::size_t n,
                                   std::size_t keep, std::uint64_t* out) {
  const int r = blockIdx.x;
  __shared__ BestKeysShared shared;
  CudaBlock block;
  select_best(block, shared, ArrayKeys{keys + r * ld}, n, keep, keep, out + r * keep);
}

__global__ void fill_offsets_kernel(int* offsets, int count, int step) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= count) offsets[i] = i * step;
}

}  // namespace

void launch_to_bf16(const float* in, std::size_t n, void* out, cudaStream_t stream) {
  if (n == 0) return;  // a grid of 0 blocks is an invalid launch
  to_bf16_kernel<<<blocks_for(n), kBlock, 0, stream>>>(in, n, static_cast<__nv_bfloat16*>(out));
  check_launch("to_bf16_kernel");
}

void launch_to_f16(const float* in, std::size_t n, void* out, cudaStream_t stream) {
  if (n == 0) return;  // a grid of 0 blocks is an invalid launch
  to_f16_kernel<<<blocks_for(n), kBlock, 0, stream>>>(in, n, static_cast<__half*>(out));
  check_launch("to_f16_kernel");
}

void launch_row_sq_norms(const void* rows, Precision precision, std::size_t n, std::size_t dim,
                         float* out, cudaStream_t stream) {
  if (n == 0) return;
  const unsigned blocks = blocks_for(n * 32);
  switch (precision) {
    case Precision::F32:
    case Precision::Tf32:
      row_sq_norms_kernel<<<blocks, kBlock, 0, stream>>>(static_cast<const float*>(rows), n, dim,
                                                         out);
      break;
    case Precision::Bf16:
      row_sq_norms_kernel<<<blocks, kBlock, 0, stream>>>(static_cast<const __nv_bfloat16*>(rows), n,
                                                         dim, out);
      break;
    case Precision::F16:
      row_sq_norms_kernel<<<blocks, kBlock, 0, stream>>>(static_cast<const __half*>(rows), n, dim,
                                                         out);
      break;
  }
  check_launch("row_sq_norms_kernel");
}

namespace {

template <typename T>
void scan_dots(const float* queries, int q_count, std::size_t dim, const T* candidates,
               std::size_t rows, float* dots, std::size_t ld, cudaStream_t stream) {
  const std::size_t shared = q_count * dim * sizeof(float);
  if ((dim * sizeof(T)) % 16 == 0 && reinterpret_cast<std::uintptr_t>(candidates) % 16 == 0) {
    // 64 rows per block (8 per warp): each block copies the queries to shared memory once per
    // 64 rows rather than per 8.
    const unsigned blocks =
        static_cast<unsigned>(std::min<std::size_t>((rows + 63) / 64, 65535u * 4));
    scan_dots_wide_kernel<<<blocks, kBlock, shared, stream>>>(queries, q_count, dim, candidates,
                                                              rows, dots, ld);
    check_launch("scan_dots_wide_kernel");
    return;
  }
  const unsigned blocks = static_cast<unsigned>(std::min<std::size_t>((rows + 7) / 8, 65535u * 4));
  scan_dots_kernel<<<blocks, kBlock, shared, stream>>>(queries, q_count, dim, candidates, rows,
                                                       dots, ld);
  check_launch("scan_dots_kernel");
}

}  // namespace

void launch_scan_dots(const float* queries, int q_count, std::size_t dim, const void* candidates,
                      Precision precision, std::size_t rows, float* dots, std::size_t ld,
                      cudaStream_t stream) {
  if (rows == 0 || q_count == 0) return;
  switch (precision) {
    case Precision::F32:
    case Precision::Tf32:
      scan_dots(queries, q_count, dim, static_cast<const float*>(candidates), rows, dots, ld,
                stream);
      break;
    case Precision::Bf16:
      scan_dots(queries, q_count, dim, static_cast<const __nv_bfloat16*>(candidates), rows, dots,
                ld, stream);
      break;
    case Precision::F16:
      scan_dots(queries, q_count, dim, static_cast<const __half*>(candidates), rows, dots, ld,
                stream);
      break;
  }
}

void launch_select_tile(const float* dots, std::size_t ld, int q_count, std::size_t rows,
                        std::uint32_t first_id, const float* query_norms,
                        const float* candidate_norms, Metric metric, std::size_t chunk_rows,
                        unsigned chunks, std::size_t keep, std::uint64_t* out, std::size_t out_ld,
                        cudaStream_t stream) {
  if (q_count == 0 || chunks == 0) return;
  select_tile_kernel<<<dim3(q_count, chunks), kBlock, 0, stream>>>(
      dots, ld, rows, first_id, query_norms, candidate_norms, metric, chunk_rows, keep, out,
      out_ld);
  check_launch("select_tile_kernel");
}

void launch_select_keys(const std::uint64_t* keys, std::size_t ld, int row_count, std::size_t n,
                        std::size_t keep, std::uint64_t* out, cudaStream_t stream) {
  if (row_count == 0) return;
  select_keys_kernel<<<row_count, kBlock, 0, stream>>>(keys, ld, n, keep, out);
  check_launch("select_keys_kernel");
}

std::size_t sort_temp_bytes(int row_count, std::size_t k) {
  std::size_t bytes = 0;
  check(cub::DeviceSegmentedRadixSort::SortKeys(
            nullptr, bytes, static_cast<const std::uint64_t*>(nullptr),
            static_cast<std::uint64_t*>(nullptr), static_cast<int>(row_count * k), row_count,
            static_cast<const int*>(nullptr), static_cast<const int*>(nullptr)),
        "cub::DeviceSegmentedRadixSort::SortKeys (size)");
  return bytes;
}

void sort_rows(const std::uint64_t* in, std::uint64_t* out, int row_count, std::size_t k,
               int* offsets, void* temp, std::size_t temp_bytes, cudaStream_t stream) {
  fill_offsets_kernel<<<(row_count + 1 + kBlock - 1) / kBlock, kBlock, 0, stream>>>(
      offsets, row_count, static_cast<int>(k));
  check_launch("fill_offsets_kernel");
  check(cub::DeviceSegmentedRadixSort::SortKeys(temp, temp_bytes, in, out,
                                                static_cast<int>(row_count * k), row_count, offsets,
                                                offsets + 1, 0, 64, stream),
        "cub::DeviceSegmentedRadixSort::SortKeys");
}

}  // namespace hetcache::gpu
