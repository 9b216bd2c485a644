// AVX2 + FMA kernels; this unit alone is compiled with -mavx2 -mfma.
// Register tile: 2 queries x 4 candidates = 8 ymm accumulators, reduced into one ymm of 8 scores.
#include <immintrin.h>

#include "compute/cpu/kernel_abi.hpp"

namespace hetcache::cpu {
namespace {

struct Simd {
  using V = __m256;
  static constexpr std::size_t kWidth = 8;
  static constexpr int kTileQ = 2;
  static constexpr int kTileN = 4;
  static constexpr bool kVectorTile = true;

  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load_partial(const float* p, std::size_t n) {
    // maskload reads only the selected lanes, so a row ending at a page edge is safe.
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lane);
    return _mm256_maskload_ps(p, mask);
  }
  static V fmadd(V a, V b, V acc) { return _mm256_fmadd_ps(a, b, acc); }

  // Tree: lanes (i, i^1), then (i, i^2), then (i, i^4) - the same as reduce_tile.
  static float hsum(V v) {
    __m256 h = _mm256_hadd_ps(v, v);
    h = _mm256_hadd_ps(h, h);
    return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  }
  // acc[q * 4 + c] -> lane q * 4 + c holds the full sum of that accumulator.
  static V reduce_tile(const V* acc) {
    const __m256 h01 = _mm256_hadd_ps(acc[0], acc[1]);
    const __m256 h23 = _mm256_hadd_ps(acc[2], acc[3]);
    const __m256 h45 = _mm256_hadd_ps(acc[4], acc[5]);
    const __m256 h67 = _mm256_hadd_ps(acc[6], acc[7]);
    const __m256 g0 = _mm256_hadd_ps(h01, h23);
    const __m256 g1 = _mm256_hadd_ps(h45, h67);
    return _mm256_add_ps(_mm256_permute2f128_ps(g0, g1, 0x20),
                         _mm256_permute2f128_ps(g0, g1, 0x31));
  }
  // Per-lane terms: query term repeated over a query's 4 lanes, candidate terms repeated per query.
  static V query_lanes(const float* t) {
    return _mm256_set_m128(_mm_set1_ps(t[1]), _mm_set1_ps(t[0]));
  }
  static V candidate_lanes(const float* t) {
    return _mm256_broadcast_ps(reinterpret_cast<const __m128*>(t));
  }

  template <MetricKind M>
  static V keys(V dots, const float* query_term, const float* candidate_term) {
    if constexpr (M == MetricKind::Dot) {
      return dots;
    } else if constexpr (M == MetricKind::Cosine) {
      return _mm256_mul_ps(_mm256_mul_ps(dots, query_lanes(query_term)),
                           candidate_lanes(candidate_term));
    } else {
      const __m256 sum = _mm256_add_ps(query_lanes(query_term), candidate_lanes(candidate_term));
      __m256 dist = _mm256_sub_ps(sum, _mm256_mul_ps(_mm256_set1_ps(2.0f), dots));
      dist = _mm256_max_ps(_mm256_setzero_ps(), dist);  // NaN stays NaN (second operand)
      return _mm256_xor_ps(dist, _mm256_set1_ps(-0.0f));
    }
  }
  static unsigned pass_mask(V keys, const TopKList* lists) {
    if (lists[0].open || lists[1].open) return 0xFFu;
    const __m256 threshold =
        _mm256_set_m128(_mm_set1_ps(lists[1].threshold), _mm_set1_ps(lists[0].threshold));
    return static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(keys, threshold, _CMP_GE_OQ)));
  }
  static void store(float* out, V v) { _mm256_storeu_ps(out, v); }
  static void store_tile(V v, float* out, std::size_t ld) {
    _mm_storeu_ps(out, _mm256_castps256_ps128(v));
    _mm_storeu_ps(out + ld, _mm256_extractf128_ps(v, 1));
  }
};

#include "compute/cpu/tile_driver.inl"

}  // namespace

extern const KernelTable kAvx2Kernels = make_kernel_table<Simd>("avx2");

}  // namespace hetcache::cpu
