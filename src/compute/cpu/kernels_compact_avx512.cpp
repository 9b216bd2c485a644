// AVX-512 (F, DQ, BW, VL) compact-set kernels: candidates widened to f32 in registers, so a scan
// reads half (f16, bf16) or a quarter (int8) of the f32 bytes. Compiled with the AVX-512 flags.
#include "compute/cpu/immintrin_avx512.hpp"

#include "compute/cpu/compact_abi.hpp"

namespace hetcache::cpu {
namespace {

#include "compute/cpu/simd_avx512.inl"

#include "compute/cpu/tile_driver.inl"

#include "compute/cpu/compact_driver.inl"

}  // namespace

extern const CompactKernelTable kAvx512CompactKernels = make_compact_table<Simd>("avx512");

}  // namespace hetcache::cpu
