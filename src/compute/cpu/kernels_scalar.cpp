// Portable kernels: plain C++ compiled for the baseline target (no intrinsics). Eight partial
// sums per pair keep the error low and let the compiler use whatever SIMD the baseline allows.
#include "compute/cpu/compact_abi.hpp"

namespace hetcache::cpu {
namespace {

#include "compute/cpu/simd_scalar.inl"

#include "compute/cpu/tile_driver.inl"

}  // namespace

extern const KernelTable kScalarKernels = make_kernel_table<Simd>("scalar");

}  // namespace hetcache::cpu
