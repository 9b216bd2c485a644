#pragma once
// Small vocabulary types shared by the whole API: metrics, tiers, SIMD instruction sets.

#include <array>
#include <optional>
#include <string_view>

namespace hetcache {

// How two vectors are compared.
//   Dot    : inner product, larger is better.
//   Cosine : dot of the normalised vectors, larger is better; a zero vector scores 0.
//   L2     : squared Euclidean distance, smaller is better.
enum class Metric { Dot, Cosine, L2 };

// Where work runs.
//   Sequential : the calling thread.
//   Fiber      : the fiber pool (I/O-style cache work).
//   Cpu        : the oneTBB arena, all cores, SIMD kernels.
//   Gpu        : cuBLAS on the GPU.
enum class Tier { Sequential, Fiber, Cpu, Gpu };
// Every tier, in the enum's order (a tier's index is static_cast<std::size_t>(tier)).
inline constexpr std::array<Tier, 4> kAllTiers = {Tier::Sequential, Tier::Fiber, Tier::Cpu,
                                                  Tier::Gpu};

// The SIMD instruction set a CPU kernel is compiled for.
enum class Isa { Scalar, Avx2, Avx512 };

// How the GPU tier multiplies (the CPU tiers always compute in f32).
//   F32  : exact f32 GEMM (the default; same scores as the CPU tier up to summation order).
//   Tf32 : f32 storage, tensor-core TF32 multiply (10-bit mantissa inputs), f32 accumulation.
//   Bf16 : candidates and queries stored as bfloat16 on the device, f32 accumulation.
//   F16  : the same with IEEE half precision.
enum class Precision { F32, Tf32, Bf16, F16 };

std::string_view to_string(Metric metric) noexcept;
std::string_view to_string(Tier tier) noexcept;
std::string_view to_string(Isa isa) noexcept;
std::string_view to_string(Precision precision) noexcept;

// Parse "dot" / "cosine" / "l2" (case-insensitive); throws Error(InvalidArgument) otherwise.
Metric parse_metric(std::string_view text);
// Parse "scalar" / "avx2" / "avx512" (case-insensitive); throws Error(InvalidArgument) otherwise.
Isa parse_isa(std::string_view text);

// Parse "f32" / "tf32" / "bf16" / "f16" (case-insensitive); throws Error(InvalidArgument)
// otherwise.
Precision parse_precision(std::string_view text);

// The best ISA this CPU (and OS, via xgetbv) supports. HETCACHE_MAX_ISA=scalar|avx2 hides what
// the CPU has above that ISA (to run the fallbacks, and their errors, on a bigger CPU).
Isa best_supported_isa() noexcept;
bool isa_supported(Isa isa) noexcept;
// The ISA the library uses by default: HETCACHE_ISA if set (it must name a supported ISA, else
// this throws Error), otherwise best_supported_isa(). Chosen once per process. A HETCACHE_MAX_ISA
// that names no ISA is an Error here too.
Isa default_isa();

}  // namespace hetcache
