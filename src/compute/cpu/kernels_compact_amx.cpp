// AMX compact-set kernels: bf16 rows with tdpbf16ps (16 x 16 x 32 multiply-adds an instruction)
// and int8 rows with tdpbsud (16 x 16 x 64), for parts of 8 or more queries; fewer go to the
// AVX512-BF16 / AVX512-VNNI kernels. Compiled with the AVX-512 flags and -mamx-tile -mamx-bf16
// -mamx-int8; chosen only where the CPU and the OS offer AMX, the kernel granted this process the
// tile data (isa.cpp) and the engine asks for it (SimilarityOptions::amx_kernels, HETCACHE_AMX=1;
// docs/similarity.md says why it is opt-in).
#include "compute/cpu/immintrin_avx512.hpp"

#include <cstring>

#include "compute/cpu/compact_abi.hpp"

namespace hetcache::cpu {
namespace {

#include "compute/cpu/simd_avx512.inl"

#include "compute/cpu/tile_driver.inl"

#include "compute/cpu/compact_driver.inl"

#include "compute/cpu/amx_driver.inl"

// The tile instructions name their tiles in the instruction, so each op is spelled per tile.
#define HETCACHE_AMX_TILE(T, OP)   \
  if constexpr ((T) == 0) {        \
    OP(0);                         \
  } else if constexpr ((T) == 1) { \
    OP(1);                         \
  } else if constexpr ((T) == 2) { \
    OP(2);                         \
  } else if constexpr ((T) == 3) { \
    OP(3);                         \
  } else if constexpr ((T) == 4) { \
    OP(4);                         \
  } else if constexpr ((T) == 5) { \
    OP(5);                         \
  } else if constexpr ((T) == 6) { \
    OP(6);                         \
  } else {                         \
    static_assert((T) == 7);       \
    OP(7);                         \
  }

struct AmxInstructions {
  // Palette 1, every tile 16 rows x 64 bytes (the layout of ldtilecfg's 64-byte operand).
  struct alignas(64) Config {
    std::uint8_t palette = 1;
    std::uint8_t start_row = 0;
    std::uint8_t reserved[14] = {};
    std::uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
    std::uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
  };
  static_assert(sizeof(Config) == 64);

  static void configure() {
    static const Config config;
    _tile_loadconfig(&config);
  }
  static void release() { _tile_release(); }
  template <int T>
  static void zero() {
#define HETCACHE_OP(n) _tile_zero(n)
    HETCACHE_AMX_TILE(T, HETCACHE_OP)
#undef HETCACHE_OP
  }
  template <int T>
  static void load(const void* p, std::size_t stride) {
    // GCC's _tile_loadd is an asm that does not tell the compiler it reads memory: without this
    // barrier the stores filling the scratch copy (or the packed queries) could be moved past
    // the load, or dropped as dead.
    __asm__ volatile("" ::: "memory");
#define HETCACHE_OP(n) _tile_loadd(n, p, static_cast<long>(stride))
    HETCACHE_AMX_TILE(T, HETCACHE_OP)
#undef HETCACHE_OP
  }
  template <int T>
  static void store(void* p, std::size_t stride) {
#define HETCACHE_OP(n) _tile_stored(n, p, static_cast<long>(stride))
    HETCACHE_AMX_TILE(T, HETCACHE_OP)
#undef HETCACHE_OP
  }
  template <ElementKind K, int C, int A, int B>
  static void dot() {
    static_assert(C >= 0 && C <= 3 && A >= 5 && A <= 7 && B == 4, "the tiles of amx_driver.inl");
#define HETCACHE_DP(c, a)                 \
  if constexpr (K == ElementKind::Bf16) { \
    _tile_dpbf16ps(c, a, 4);              \
  } else {                                \
    _tile_dpbsud(c, a, 4);                \
  }
#define HETCACHE_OP(c)           \
  if constexpr (A == 5) {        \
    HETCACHE_DP(c, 5)            \
  } else if constexpr (A == 6) { \
    HETCACHE_DP(c, 6)            \
  } else {                       \
    HETCACHE_DP(c, 7)            \
  }
    HETCACHE_AMX_TILE(C, HETCACHE_OP)
#undef HETCACHE_OP
#undef HETCACHE_DP
  }
};

#undef HETCACHE_AMX_TILE

void amx_bf16_offer_block(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                          std::size_t c1, SurvivorList* lists) {
  amx_offer_block<AmxInstructions, ElementKind::Bf16>(p, q0, q1, c0, c1, lists,
                                                      kAvx512Bf16CompactKernels);
}

void amx_i8_offer_block(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                        std::size_t c1, SurvivorList* lists) {
  amx_offer_block<AmxInstructions, ElementKind::I8>(p, q0, q1, c0, c1, lists,
                                                    kAvx512VnniCompactKernels);
}

}  // namespace

extern const CompactKernelTable kAmxBf16CompactKernels = {
    "amx-bf16", QueryCoding::Bf16, &amx_bf16_offer_block, &encode_rows<Simd>, &decode_row<Simd>};
extern const CompactKernelTable kAmxI8CompactKernels = {
    "amx-int8", QueryCoding::U8, &amx_i8_offer_block, &encode_rows<Simd>, &decode_row<Simd>};

}  // namespace hetcache::cpu
