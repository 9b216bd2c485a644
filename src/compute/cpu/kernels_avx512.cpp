// AVX-512 (F, DQ, BW, VL) kernels; this unit alone is compiled with the AVX-512 flags.
// Register tile: 4 queries x 4 candidates = 16 zmm accumulators, reduced into one zmm of 16 scores.
// GCC 12 reports its own _mm512_undefined_* helpers as uninitialised (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "compute/cpu/compact_abi.hpp"

namespace hetcache::cpu {
namespace {

#include "compute/cpu/simd_avx512.inl"

#include "compute/cpu/tile_driver.inl"

}  // namespace

extern const KernelTable kAvx512Kernels = make_kernel_table<Simd>("avx512");

}  // namespace hetcache::cpu
