// Run-time ISA detection (cpuid + xgetbv) and the HETCACHE_ISA override.
#include "compute/cpu/isa.hpp"

#include "compute/cpu/compact_rows.hpp"

#include <hetcache/error.hpp>

#include <cstdlib>
#include <string>

#if defined(HETCACHE_X86_KERNELS)
#include <cpuid.h>
#endif
#if defined(HETCACHE_X86_KERNELS) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace hetcache {
namespace {

struct CpuFeatures {
  bool avx2 = false;         // AVX2 + FMA + F16C + OS-enabled YMM state
  bool avx512 = false;       // AVX-512 F/DQ/BW/VL + OS-enabled ZMM state
  bool avx512_bf16 = false;  // and AVX512-BF16 (vdpbf16ps)
  bool avx512_vnni = false;  // and AVX512-VNNI (vpdpbusd)
  bool avx_vnni = false;     // AVX2 and AVX-VNNI (the VEX-encoded vpdpbusd)
  bool amx_bf16 = false;     // AVX-512, AMX-TILE and AMX-BF16 + OS-enabled tile state
  bool amx_int8 = false;     // AVX-512, AMX-TILE and AMX-INT8 + OS-enabled tile state
};

CpuFeatures detect_features() noexcept {
  CpuFeatures f;
#if defined(HETCACHE_X86_KERNELS)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool fma = (ecx >> 12) & 1u, osxsave = (ecx >> 27) & 1u, avx = (ecx >> 28) & 1u;
  const bool f16c = (ecx >> 29) & 1u;
  if (!(osxsave && avx)) return f;
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  // xgetbv directly (the intrinsic needs -mxsave, which this baseline unit must not use).
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool os_ymm = (xcr0_lo & 0x6u) == 0x6u;    // XMM and YMM state
  const bool os_zmm = (xcr0_lo & 0xE6u) == 0xE6u;  // plus opmask, ZMM_Hi256, Hi16_ZMM
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return f;
  const bool avx2 = (ebx >> 5) & 1u;
  const bool vnni = (ecx >> 11) & 1u;
  const bool avx512 = ((ebx >> 16) & 1u) && ((ebx >> 17) & 1u)      // F, DQ
                      && ((ebx >> 30) & 1u) && ((ebx >> 31) & 1u);  // BW, VL
  f.avx2 = os_ymm && avx2 && fma && f16c;
  f.avx512 = f.avx2 && os_zmm && avx512;
  f.avx512_vnni = f.avx512 && vnni;
  const bool os_tiles = (xcr0_lo & 0x60000u) == 0x60000u;  // XTILECFG and XTILEDATA
  const bool amx_tile = (edx >> 24) & 1u;
  f.amx_bf16 = f.avx512 && os_tiles && amx_tile && ((edx >> 22) & 1u);
  f.amx_int8 = f.avx512 && os_tiles && amx_tile && ((edx >> 25) & 1u);
  if (f.avx2 && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) {
    f.avx_vnni = (eax >> 4) & 1u;
    f.avx512_bf16 = f.avx512 && ((eax >> 5) & 1u);
  }
#endif
  return f;
}

// HETCACHE_MAX_ISA=scalar|avx2 hides what the CPU has above it, so the fallbacks and the
// "unsupported" errors run on a bigger CPU too. A value that is not an ISA name is reported by
// default_isa(); here it hides nothing.
const char* max_isa_setting() noexcept {
  const char* max = std::getenv("HETCACHE_MAX_ISA");
  return max != nullptr && *max != '\0' ? max : nullptr;
}

CpuFeatures capped(CpuFeatures f) noexcept {
  const char* max = max_isa_setting();
  if (max == nullptr) return f;
  const std::string name(max);
  if (name == "scalar") {
    f.avx2 = f.avx512 = f.avx512_bf16 = f.avx512_vnni = f.avx_vnni = f.amx_bf16 = f.amx_int8 =
        false;
  }
  if (name == "avx2") f.avx512 = f.avx512_bf16 = f.avx512_vnni = f.amx_bf16 = f.amx_int8 = false;
  return f;
}

const CpuFeatures& features() noexcept {
  static const CpuFeatures f = capped(detect_features());
  return f;
}

Isa isa_from_environment() {
  if (const char* max = max_isa_setting()) {
    try {
      parse_isa(max);
    } catch (const Error&) {
      throw Error(ErrorCode::InvalidArgument,
                  "HETCACHE_MAX_ISA='" + std::string(max) + "' is not one of scalar, avx2, avx512");
    }
  }
  const char* forced = std::getenv("HETCACHE_ISA");
  if (forced == nullptr || *forced == '\0') return best_supported_isa();
  Isa isa;
  try {
    isa = parse_isa(forced);
  } catch (const Error&) {
    throw Error(ErrorCode::InvalidArgument,
                "HETCACHE_ISA='" + std::string(forced) + "' is not one of scalar, avx2, avx512");
  }
  // Touch the table now so an unsupported choice fails here, with its reason.
  cpu::kernels_for(isa);
  return isa;
}

}  // namespace

bool isa_supported(Isa isa) noexcept {
  switch (isa) {
    case Isa::Scalar:
      return true;
    case Isa::Avx2:
      return features().avx2;
    case Isa::Avx512:
      return features().avx512;
  }
  return false;
}

Isa best_supported_isa() noexcept {
  if (isa_supported(Isa::Avx512)) return Isa::Avx512;
  if (isa_supported(Isa::Avx2)) return Isa::Avx2;
  return Isa::Scalar;
}

Isa default_isa() {
  // A throwing initialiser leaves the static uninitialised, so a bad HETCACHE_ISA keeps failing
  // with the same clear error rather than crashing later.
  static const Isa isa = isa_from_environment();
  return isa;
}

namespace cpu {

const KernelTable& kernels_for(Isa isa) {
  if (!isa_supported(isa)) {
#if defined(HETCACHE_X86_KERNELS)
    const char* need = isa == Isa::Avx512 ? "AVX-512 F/DQ/BW/VL with ZMM state enabled by the OS"
                                          : "AVX2, FMA and F16C with YMM state enabled by the OS";
    const char* hidden = max_isa_setting();
    throw Error(ErrorCode::Unsupported,
                "ISA " + std::string(to_string(isa)) + " is not supported by this CPU (needs " +
                    need + ")" +
                    (hidden ? std::string(" or is hidden by HETCACHE_MAX_ISA=") + hidden : ""));
#else
    throw Error(ErrorCode::Unsupported, "ISA " + std::string(to_string(isa)) +
                                            " kernels are not built for this architecture");
#endif
  }
  switch (isa) {
#if defined(HETCACHE_X86_KERNELS)
    case Isa::Avx512:
      return kAvx512Kernels;
    case Isa::Avx2:
      return kAvx2Kernels;
#endif
    default:
      return kScalarKernels;
  }
}

namespace {

// Linux keeps the AMX tile data off for a process until it asks (arch_prctl ARCH_REQ_XCOMP_PERM,
// Linux 5.16+); a tile instruction before that faults. Asked once, the first time AMX is wanted.
bool amx_permitted() noexcept {
  static const bool permitted = [] {
#if defined(HETCACHE_X86_KERNELS) && defined(__linux__)
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return (features().amx_bf16 || features().amx_int8) &&
           syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
#else
    return false;
#endif
  }();
  return permitted;
}

}  // namespace

bool cpu_has_amx_bf16() noexcept { return features().amx_bf16 && amx_permitted(); }
bool cpu_has_amx_int8() noexcept { return features().amx_int8 && amx_permitted(); }

bool amx_requested() {
  static const bool requested = [] {
    const char* value = std::getenv("HETCACHE_AMX");
    if (value == nullptr || *value == '\0' || std::string(value) == "0") return false;
    if (std::string(value) == "1") return true;
    throw Error(ErrorCode::InvalidArgument,
                "HETCACHE_AMX='" + std::string(value) + "' is not 0 or 1");
  }();
  return requested;
}

bool cpu_has_avx512_bf16() noexcept { return features().avx512_bf16; }
bool cpu_has_avx512_vnni() noexcept { return features().avx512_vnni; }
bool cpu_has_avx_vnni() noexcept { return features().avx_vnni; }

const CompactKernelTable& compact_kernels_for(Isa isa, ElementKind kind, bool quantize_queries,
                                              bool amx) {
  kernels_for(isa);  // the same "unsupported" error as the f32 kernels
  (void)amx;
  (void)kind;
  (void)quantize_queries;
  switch (isa) {
#if defined(HETCACHE_X86_KERNELS)
    case Isa::Avx512:
      // The AMX kernels hand parts of few queries to these two, so they need them too.
      if (kind == ElementKind::Bf16 && quantize_queries && cpu_has_avx512_bf16()) {
        if (amx && cpu_has_amx_bf16()) return kAmxBf16CompactKernels;
        return kAvx512Bf16CompactKernels;
      }
      if (kind == ElementKind::I8 && quantize_queries && cpu_has_avx512_vnni()) {
        if (amx && cpu_has_amx_int8()) return kAmxI8CompactKernels;
        return kAvx512VnniCompactKernels;
      }
      return kAvx512CompactKernels;
    case Isa::Avx2:
      if (kind == ElementKind::I8 && quantize_queries && cpu_has_avx_vnni()) {
        return kAvxVnniCompactKernels;
      }
      return kAvx2CompactKernels;
#endif
    default:
      return kScalarCompactKernels;
  }
}

}  // namespace cpu
}  // namespace hetcache
