// AVX-512 (F, DQ, BW, VL) kernels; this unit alone is compiled with the AVX-512 flags.
// Register tile: 4 queries x 4 candidates = 16 zmm accumulators, reduced into one zmm of 16 scores.
#include "compute/cpu/immintrin_avx512.hpp"

#include "compute/cpu/compact_abi.hpp"

namespace hetcache::cpu {
namespace {

#include "compute/cpu/simd_avx512.inl"

#include "compute/cpu/tile_driver.inl"

}  // namespace

extern const KernelTable kAvx512Kernels = make_kernel_table<Simd>("avx512");

}  // namespace hetcache::cpu
