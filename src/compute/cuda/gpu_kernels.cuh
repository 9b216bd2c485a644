// Private: the GPU tier's kernels, behind host-side launchers (src/compute/cuda/gpu_kernels.cu).
// Ranking works on 64-bit keys: top-k is a queue select (k <= 256, queue_select.hpp) or a radix
// select (rank_keys.hpp) of the k smallest.
#pragma once

#include <hetcache/types.hpp>

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "compute/cuda/rank_keys.hpp"

namespace hetcache::gpu {

// Storage conversions and squared row norms (f32 accumulation).
void launch_to_bf16(const float* in, std::size_t n, void* out, cudaStream_t stream);
void launch_to_f16(const float* in, std::size_t n, void* out, cudaStream_t stream);
void launch_row_sq_norms(const void* rows, Precision precision, std::size_t n, std::size_t dim,
                         float* out, cudaStream_t stream);

// Small Q: dots[q * ld + i] = queries[q] . candidates[i], reading every candidate row once (one
// warp per row, the queries in shared memory). Needs q_count <= kScanMaxQueries and the queries in
// kScanMaxSharedBytes.
inline constexpr int kScanMaxQueries = 8;
inline constexpr std::size_t kScanMaxSharedBytes = 48 * 1024;
void launch_scan_dots(const float* queries, int q_count, std::size_t dim, const void* candidates,
                      Precision precision, std::size_t rows, float* dots, std::size_t ld,
                      cudaStream_t stream);

// Per query q of a tile of `rows` candidates (first id `first_id`), split into `chunks` chunks of
// chunk_rows (so a few queries still fill the GPU): chunk c's `keep` smallest keys at
// out + q * out_ld + c * keep, unsorted; positions past the chunk's rows hold kNoKey. The score
// comes from dots[q * ld + i] and the squared norms as the metric says. keep <= kQueueSelectMaxK
// reads the dots once (queue_select.hpp), larger keep runs the radix select.
void launch_select_tile(const float* dots, std::size_t ld, int q_count, std::size_t rows,
                        std::uint32_t first_id, const float* query_norms,
                        const float* candidate_norms, Metric metric, std::size_t chunk_rows,
                        unsigned chunks, std::size_t keep, std::uint64_t* out, std::size_t out_ld,
                        cudaStream_t stream);

// Per row r: the `keep` smallest of keys[r * ld .. + n], unsorted, at out + r * keep.
void launch_select_keys(const std::uint64_t* keys, std::size_t ld, int row_count, std::size_t n,
                        std::size_t keep, std::uint64_t* out, cudaStream_t stream);

// Sorts each of row_count rows of k keys ascending, from in to out; temp from sort_temp_bytes.
std::size_t sort_temp_bytes(int row_count, std::size_t k);
void sort_rows(const std::uint64_t* in, std::uint64_t* out, int row_count, std::size_t k,
               int* offsets, void* temp, std::size_t temp_bytes, cudaStream_t stream);

}  // namespace hetcache::gpu
