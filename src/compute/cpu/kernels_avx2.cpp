// AVX2 + FMA kernels; this unit alone is compiled with -mavx2 -mfma.
// Register tile: 2 queries x 4 candidates = 8 ymm accumulators, reduced into one ymm of 8 scores.
#include <immintrin.h>

#include "compute/cpu/compact_abi.hpp"

namespace hetcache::cpu {
namespace {

#include "compute/cpu/simd_avx2.inl"

#include "compute/cpu/tile_driver.inl"

}  // namespace

extern const KernelTable kAvx2Kernels = make_kernel_table<Simd>("avx2");

}  // namespace hetcache::cpu
