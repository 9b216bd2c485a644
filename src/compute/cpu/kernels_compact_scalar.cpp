// Portable compact-set kernels (f16 / bf16 / int8 candidates decoded in plain C++): the reference
// the vector units are tested against, and the path of a CPU without AVX2.
#include "compute/cpu/compact_abi.hpp"

namespace hetcache::cpu {
namespace {

#include "compute/cpu/simd_scalar.inl"

#include "compute/cpu/tile_driver.inl"

#include "compute/cpu/compact_driver.inl"

}  // namespace

extern const CompactKernelTable kScalarCompactKernels = make_compact_table<Simd>("scalar");

}  // namespace hetcache::cpu
