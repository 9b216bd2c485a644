// AVX-VNNI compact-set kernel for int8 rows on CPUs with AVX2 (the VEX-encoded vpdpbusd of Alder
// Lake and later, Zen 5): 32 unsigned x signed byte pairs per instruction into 8 int32 sums,
// exactly. The coding is the AVX-512 VNNI kernel's (kernels_compact_avx512vnni.cpp): queries as
// int8 codes + 128, the row's code sum taking the offset out; the slack carries |q - q'|.
// Compiled with the AVX2 flags and -mavxvnni; used only where the CPU reports AVX-VNNI.
#include <immintrin.h>

#include <cstring>

#include "compute/cpu/compact_abi.hpp"

namespace hetcache::cpu {
namespace {

#include "compute/cpu/simd_avx2.inl"

#include "compute/cpu/tile_driver.inl"

#include "compute/cpu/compact_driver.inl"

std::int32_t sum_lanes(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// The n < 32 bytes at p, then zeros: nothing past the row is read.
__m256i load_tail(const void* p, std::size_t n) {
  alignas(32) unsigned char buffer[32] = {};
  std::memcpy(buffer, p, n);
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(buffer));
}

// dots[i * ld + j] = q'[q + i] . c'[c + j], 32 codes a step.
struct AvxVnniTile {
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
    __m256i acc[QT * NT];
#pragma GCC unroll 16
    for (int i = 0; i < QT * NT; ++i) acc[i] = _mm256_setzero_si256();
    const std::size_t ahead = NT * p.candidates.stride;
    std::size_t k = 0;
    for (; k + 32 <= dim; k += 32) {
      __m256i qv[QT];
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) {
        qv[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qrow[i] + k));
      }
#pragma GCC unroll 8
      for (int j = 0; j < NT; ++j) {
        __builtin_prefetch(crow[j] + k + ahead, 0, 3);
        const __m256i cv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(crow[j] + k));
#pragma GCC unroll 8
        for (int i = 0; i < QT; ++i)
          acc[i * NT + j] = _mm256_dpbusd_avx_epi32(acc[i * NT + j], qv[i], cv);
      }
    }
    if (k < dim) {
      // Bytes past dim are zero on both sides, so they add nothing.
      __m256i qv[QT];
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) qv[i] = load_tail(qrow[i] + k, dim - k);
#pragma GCC unroll 8
      for (int j = 0; j < NT; ++j) {
        const __m256i cv = load_tail(crow[j] + k, dim - k);
#pragma GCC unroll 8
        for (int i = 0; i < QT; ++i)
          acc[i * NT + j] = _mm256_dpbusd_avx_epi32(acc[i * NT + j], qv[i], cv);
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < NT; ++j) {
      const std::int32_t offset = 128 * p.candidates.code_sums[c + j];
      const float row_scale = p.candidates.scales[c + j];
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) {
        const std::int32_t sum = sum_lanes(acc[i * NT + j]) - offset;
        dots[i * ld + j] = (static_cast<float>(sum) * p.query_code_scale[q + i]) * row_scale;
      }
    }
  }
};

void avx_vnni_offer_block(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                          std::size_t c1, SurvivorList* lists) {
  offer_block_metric<Simd, AvxVnniTile>(p, q0, q1, c0, c1, lists);
}

}  // namespace

extern const CompactKernelTable kAvxVnniCompactKernels = {
    "avx-vnni", QueryCoding::U8, &avx_vnni_offer_block, &encode_rows<Simd>, &decode_row<Simd>};

}  // namespace hetcache::cpu
