// AVX-512 (F, DQ, BW, VL) kernels; this unit alone is compiled with the AVX-512 flags.
// Register tile: 4 queries x 4 candidates = 16 zmm accumulators, reduced into one zmm of 16 scores.
// GCC 12 reports its own _mm512_undefined_* helpers as uninitialised (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "compute/cpu/kernel_abi.hpp"

namespace hetcache::cpu {
namespace {

struct Simd {
  using V = __m512;
  static constexpr std::size_t kWidth = 16;
  static constexpr int kTileQ = 4;
  static constexpr int kTileN = 4;
  static constexpr bool kVectorTile = true;

  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load_partial(const float* p, std::size_t n) {
    // Masked-off lanes are not read, so a row ending at a page edge is safe.
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), p);
  }
  static V fmadd(V a, V b, V acc) { return _mm512_fmadd_ps(a, b, acc); }

  // Tree: lanes (i, i^8), then (i, i^4), (i, i^2), (i, i^1) - the same as reduce_tile.
  static float hsum(V v) {
    const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
  }
  // acc[q * 4 + c] -> lane q * 4 + c holds the full sum of that accumulator. The butterfly below
  // leaves accumulator (b + 4 j) in lane (4 b + j), so it is fed acc in (q + 4 c) order.
  static V reduce_tile(const V* acc) {
    auto in = [acc](int m) { return acc[(m % 4) * 4 + m / 4]; };
    V r[8];
    for (int m = 0; m < 8; ++m) {  // (i, i^8): 256-bit halves
      const V a = in(2 * m), b = in(2 * m + 1);
      r[m] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    }
    V s[4];
    for (int m = 0; m < 4; ++m) {  // (i, i^4): 128-bit blocks
      const V a = r[2 * m], b = r[2 * m + 1];
      s[m] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                           _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
    }
    V u[2];
    for (int m = 0; m < 2; ++m) {  // (i, i^2): 64-bit pairs inside each block
      const V a = s[2 * m], b = s[2 * m + 1];
      u[m] = _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    }
    // (i, i^1): neighbouring lanes
    return _mm512_add_ps(_mm512_shuffle_ps(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_ps(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1)));
  }
  // Query term q repeated over lanes 4q..4q+3; the 4 candidate terms repeated for each query.
  static V query_lanes(const float* t) {
    const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    return _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_loadu_ps(t)));
  }
  static V candidate_lanes(const float* t) { return _mm512_broadcast_f32x4(_mm_loadu_ps(t)); }

  template <MetricKind M>
  static V keys(V dots, const float* query_term, const float* candidate_term) {
    if constexpr (M == MetricKind::Dot) {
      return dots;
    } else if constexpr (M == MetricKind::Cosine) {
      return _mm512_mul_ps(_mm512_mul_ps(dots, query_lanes(query_term)),
                           candidate_lanes(candidate_term));
    } else {
      const __m512 sum = _mm512_add_ps(query_lanes(query_term), candidate_lanes(candidate_term));
      __m512 dist = _mm512_sub_ps(sum, _mm512_mul_ps(_mm512_set1_ps(2.0f), dots));
      dist = _mm512_max_ps(_mm512_setzero_ps(), dist);  // NaN stays NaN (second operand)
      return _mm512_xor_ps(dist, _mm512_set1_ps(-0.0f));
    }
  }
  static unsigned pass_mask(V keys, const TopKList* lists) {
    if (lists[0].open || lists[1].open || lists[2].open || lists[3].open) return 0xFFFFu;
    const __m128 t =
        _mm_setr_ps(lists[0].threshold, lists[1].threshold, lists[2].threshold, lists[3].threshold);
    const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512 threshold = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(t));
    return _mm512_cmp_ps_mask(keys, threshold, _CMP_GE_OQ);
  }
  static void store(float* out, V v) { _mm512_storeu_ps(out, v); }
  static void store_tile(V v, float* out, std::size_t ld) {
    _mm_storeu_ps(out, _mm512_castps512_ps128(v));
    _mm_storeu_ps(out + ld, _mm512_extractf32x4_ps(v, 1));
    _mm_storeu_ps(out + 2 * ld, _mm512_extractf32x4_ps(v, 2));
    _mm_storeu_ps(out + 3 * ld, _mm512_extractf32x4_ps(v, 3));
  }
};

#include "compute/cpu/tile_driver.inl"

}  // namespace

extern const KernelTable kAvx512Kernels = make_kernel_table<Simd>("avx512");

}  // namespace hetcache::cpu
