// Private to src/compute/cpu: the AVX2 + FMA (+ F16C) vector policy of tile_driver.inl and
// compact_driver.inl, included inside an anonymous namespace by each AVX2 unit.
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
    return reduce_tile_by(
        acc, [](V a, V b) { return _mm256_hadd_ps(a, b); },
        [](V a, V b) { return _mm256_add_ps(a, b); });
  }
  // The same tree with other pairwise and lane-wise adds, on __m256 or __m256i (the AVX-VNNI
  // tile's int32 sums).
  template <class T, class HAdd, class Add>
  static T reduce_tile_by(const T* acc, HAdd hadd, Add add) {
    const T g0 = hadd(hadd(acc[0], acc[1]), hadd(acc[2], acc[3]));
    const T g1 = hadd(hadd(acc[4], acc[5]), hadd(acc[6], acc[7]));
    return add(permute_halves<0x20>(g0, g1), permute_halves<0x31>(g0, g1));
  }
  template <int Imm>
  static __m256 permute_halves(__m256 a, __m256 b) {
    return _mm256_permute2f128_ps(a, b, Imm);
  }
  template <int Imm>
  static __m256i permute_halves(__m256i a, __m256i b) {
    return _mm256_permute2x128_si256(a, b, Imm);
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

  // --- compact_driver.inl -----------------------------------------------------------------------
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V max_zero(V v) { return _mm256_max_ps(_mm256_setzero_ps(), v); }  // NaN: v
  static V negate(V v) { return _mm256_xor_ps(v, _mm256_set1_ps(-0.0f)); }
  static unsigned not_less(V a, V b) {
    return static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_NLT_UQ)));
  }

  template <ElementKind K>
  static V load_code(const void* row, std::size_t k) {
    const auto* p = static_cast<const unsigned char*>(row) + k * (K == ElementKind::I8 ? 1 : 2);
    if constexpr (K == ElementKind::F16) {
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    } else if constexpr (K == ElementKind::Bf16) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    } else {
      const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
      return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
    }
  }
  // The n < 8 codes copied into a zeroed buffer first: nothing past the row is read.
  template <ElementKind K>
  static V load_code_partial(const void* row, std::size_t k, std::size_t n) {
    alignas(16) unsigned char buffer[16] = {};
    const std::size_t bytes = K == ElementKind::I8 ? 1 : 2;
    __builtin_memcpy(buffer, static_cast<const unsigned char*>(row) + k * bytes, n * bytes);
    return load_code<K>(buffer, 0);
  }

  // F16 and Bf16 vectorised; I8 (a one-time conversion) takes the reference path.
  template <ElementKind K>
  static void encode_row(const float* src, std::size_t dim, void* dst, float* scale) {
    std::size_t k = 0;
    if constexpr (K == ElementKind::F16) {
      auto* out = static_cast<std::uint16_t*>(dst);
      for (; k + 8 <= dim; k += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + k), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), h);
      }
      encode_row_reference<K>(src + k, dim - k, out + k, nullptr);
    } else if constexpr (K == ElementKind::Bf16) {
      auto* out = static_cast<std::uint16_t*>(dst);
      const __m256i one = _mm256_set1_epi32(1), round = _mm256_set1_epi32(0x7FFF);
      for (; k + 8 <= dim; k += 8) {
        const __m256i bits = _mm256_castps_si256(_mm256_loadu_ps(src + k));
        const __m256i abs = _mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFFFF));
        const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7F800000));
        const __m256i high = _mm256_srli_epi32(bits, 16);
        __m256i r = _mm256_srli_epi32(
            _mm256_add_epi32(_mm256_add_epi32(bits, round), _mm256_and_si256(high, one)), 16);
        r = _mm256_blendv_epi8(r, _mm256_or_si256(high, _mm256_set1_epi32(0x40)), nan);
        const __m256i tiny = _mm256_cmpeq_epi32(_mm256_and_si256(r, _mm256_set1_epi32(0x7F80)),
                                                _mm256_setzero_si256());
        r = _mm256_blendv_epi8(r, _mm256_and_si256(r, _mm256_set1_epi32(0x8000)), tiny);
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), _mm256_castsi256_si128(packed));
      }
      encode_row_reference<K>(src + k, dim - k, out + k, nullptr);
    } else {
      encode_row_reference<K>(src, dim, dst, scale);
    }
  }
};
