// AVX-512 VNNI compact-set kernel for int8 rows: vpdpbusd multiplies 64 unsigned x signed byte
// pairs per instruction into 16 int32 sums, four times the multiply-adds of an f32 FMA, exactly.
// The queries are int8 codes too (scale = max|q| / 127, as the rows), stored + 128 so they are
// unsigned: sum (q + 128) c = sum q c + 128 sum c, and the row's code sum takes the 128 back out.
// |sum| <= 255 * 127 * dim fits int32 for dim <= 65536. The slack carries |q - q'|.
// Compiled with the AVX-512 flags and -mavx512vnni; used only where the CPU reports AVX512-VNNI.
#include "compute/cpu/immintrin_avx512.hpp"

#include "compute/cpu/compact_abi.hpp"

namespace hetcache::cpu {
namespace {

#include "compute/cpu/simd_avx512.inl"

#include "compute/cpu/tile_driver.inl"

#include "compute/cpu/compact_driver.inl"

// dots[i * ld + j] = q'[q + i] . c'[c + j], 64 codes a step.
struct VnniTile {
  static constexpr int kScanTileN = Simd::kTileN;  // int8 rows: four chains (see WideningTile)

  template <int QT, int NT>
  static void tile(const CompactProblem& p, std::size_t q, std::size_t c, float* dots,
                   std::size_t ld) {
    const std::size_t dim = p.queries.dim;
    const unsigned char* qrow[QT];
    const signed char* crow[NT];
#pragma GCC unroll 8
    for (int i = 0; i < QT; ++i) {
      qrow[i] = static_cast<const unsigned char*>(p.query_codes) + (q + i) * p.query_codes_stride;
    }
#pragma GCC unroll 8
    for (int j = 0; j < NT; ++j) {
      crow[j] = static_cast<const signed char*>(p.candidates.data) + (c + j) * p.candidates.stride;
    }
    __m512i acc[QT * NT];
#pragma GCC unroll 16
    for (int i = 0; i < QT * NT; ++i) acc[i] = _mm512_setzero_si512();
    const std::size_t ahead = NT * p.candidates.stride;
    std::size_t k = 0;
    for (; k + 64 <= dim; k += 64) {
      __m512i qv[QT];
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) qv[i] = _mm512_loadu_si512(qrow[i] + k);
#pragma GCC unroll 8
      for (int j = 0; j < NT; ++j) {
        __builtin_prefetch(crow[j] + k + ahead, 0, 3);
        const __m512i cv = _mm512_loadu_si512(crow[j] + k);
#pragma GCC unroll 8
        for (int i = 0; i < QT; ++i)
          acc[i * NT + j] = _mm512_dpbusd_epi32(acc[i * NT + j], qv[i], cv);
      }
    }
    if (k < dim) {
      // Lanes past dim load as zero on both sides, so they add nothing.
      const __mmask64 mask = (~std::uint64_t{0}) >> (64 - (dim - k));
      __m512i qv[QT];
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) qv[i] = _mm512_maskz_loadu_epi8(mask, qrow[i] + k);
#pragma GCC unroll 8
      for (int j = 0; j < NT; ++j) {
        const __m512i cv = _mm512_maskz_loadu_epi8(mask, crow[j] + k);
#pragma GCC unroll 8
        for (int i = 0; i < QT; ++i)
          acc[i * NT + j] = _mm512_dpbusd_epi32(acc[i * NT + j], qv[i], cv);
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < NT; ++j) {
      const std::int32_t offset = 128 * p.candidates.code_sums[c + j];
      const float row_scale = p.candidates.scales[c + j];
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) {
        const std::int32_t sum = _mm512_reduce_add_epi32(acc[i * NT + j]) - offset;
        dots[i * ld + j] = (static_cast<float>(sum) * p.query_code_scale[q + i]) * row_scale;
      }
    }
  }
};

void vnni_offer_block(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                      std::size_t c1, SurvivorList* lists) {
  offer_block_metric<Simd, VnniTile>(p, q0, q1, c0, c1, lists);
}

}  // namespace

extern const CompactKernelTable kAvx512VnniCompactKernels = {
    "avx512-vnni", QueryCoding::U8, &vnni_offer_block, &encode_rows<Simd>, &decode_row<Simd>};

}  // namespace hetcache::cpu
