// AVX2 + FMA + F16C compact-set kernels; this unit alone is compiled with those flags.
#include <immintrin.h>

#include "compute/cpu/compact_abi.hpp"

namespace hetcache::cpu {
namespace {

#include "compute/cpu/simd_avx2.inl"

#include "compute/cpu/tile_driver.inl"

#include "compute/cpu/compact_driver.inl"

}  // namespace

extern const CompactKernelTable kAvx2CompactKernels = make_compact_table<Simd>("avx2");

}  // namespace hetcache::cpu
