// Private to src/: choosing the kernel table for an ISA.
#pragma once

#include <hetcache/types.hpp>

#include "compute/cpu/kernel_abi.hpp"

namespace hetcache::cpu {

// The kernels of `isa`; throws Error(Unsupported) naming what the CPU lacks.
const KernelTable& kernels_for(Isa isa);

}  // namespace hetcache::cpu
