// AVX-512 BF16 compact-set kernel for bf16 candidates: vdpbf16ps multiplies 32 bf16 pairs per
// instruction into 16 f32 sums, twice the multiply-adds of an f32 FMA. The queries are rounded to
// bf16 too (CompactProblem::query_codes); the slack carries |q - q'| (compact_set.cpp).
// Compiled with the AVX-512 flags and -mavx512bf16; used only where the CPU reports AVX512-BF16.
#include "compute/cpu/immintrin_avx512.hpp"

#include "compute/cpu/compact_abi.hpp"

namespace hetcache::cpu {
namespace {

#include "compute/cpu/simd_avx512.inl"

#include "compute/cpu/tile_driver.inl"

#include "compute/cpu/compact_driver.inl"

// dots[i * ld + j] = bf16(queries[q + i]) . candidates[c + j], 32 elements a step.
struct Bf16DotTile {
  static constexpr int kScanTileN = 1;  // one sequential stream (see WideningTile)

  template <int QT, int NT>
  static void tile(const CompactProblem& p, std::size_t q, std::size_t c, float* dots,
                   std::size_t ld) {
    const std::size_t dim = p.queries.dim;
    const std::uint16_t* qrow[QT];
    const std::uint16_t* crow[NT];
#pragma GCC unroll 8
    for (int i = 0; i < QT; ++i) {
      qrow[i] = static_cast<const std::uint16_t*>(p.query_codes) + (q + i) * p.query_codes_stride;
    }
#pragma GCC unroll 8
    for (int j = 0; j < NT; ++j) {
      crow[j] =
          static_cast<const std::uint16_t*>(p.candidates.data) + (c + j) * p.candidates.stride;
    }
    __m512 acc[QT * NT];
#pragma GCC unroll 16
    for (int i = 0; i < QT * NT; ++i) acc[i] = _mm512_setzero_ps();
    const std::size_t ahead = NT * p.candidates.stride;
    std::size_t k = 0;
    for (; k + 32 <= dim; k += 32) {
      __m512bh qv[QT];
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) qv[i] = (__m512bh)_mm512_loadu_si512(qrow[i] + k);
#pragma GCC unroll 8
      for (int j = 0; j < NT; ++j) {
        __builtin_prefetch(crow[j] + k + ahead, 0, 3);
        const auto cv = (__m512bh)_mm512_loadu_si512(crow[j] + k);
#pragma GCC unroll 8
        for (int i = 0; i < QT; ++i) acc[i * NT + j] = _mm512_dpbf16_ps(acc[i * NT + j], qv[i], cv);
      }
    }
    if (k < dim) {
      const auto mask = static_cast<__mmask32>((std::uint64_t{1} << (dim - k)) - 1u);
      __m512bh qv[QT];
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) qv[i] = (__m512bh)_mm512_maskz_loadu_epi16(mask, qrow[i] + k);
#pragma GCC unroll 8
      for (int j = 0; j < NT; ++j) {
        const auto cv = (__m512bh)_mm512_maskz_loadu_epi16(mask, crow[j] + k);
#pragma GCC unroll 8
        for (int i = 0; i < QT; ++i) acc[i * NT + j] = _mm512_dpbf16_ps(acc[i * NT + j], qv[i], cv);
      }
    }
    store_dots<Simd, QT, NT>(acc, nullptr, dots, ld);
  }
};

void bf16_offer_block(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                      std::size_t c1, SurvivorList* lists) {
  offer_block_metric<Simd, Bf16DotTile>(p, q0, q1, c0, c1, lists);
}

}  // namespace

extern const CompactKernelTable kAvx512Bf16CompactKernels = {
    "avx512-bf16", QueryCoding::Bf16, &bf16_offer_block, &encode_rows<Simd>, &decode_row<Simd>};

}  // namespace hetcache::cpu
