// Private to src/compute/cpu: the AVX-512 (F, DQ, BW, VL) vector policy of tile_driver.inl and
// compact_driver.inl, included inside an anonymous namespace by each AVX-512 unit.
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
    return reduce_tile_by(acc, [](V a, V b) { return _mm512_add_ps(a, b); });
  }
  // The same butterfly with another lane-wise add (vnni_tile.inl's int32 sums, as V's bits).
  template <class Add>
  static V reduce_tile_by(const V* acc, Add add) {
    auto in = [acc](int m) { return acc[(m % 4) * 4 + m / 4]; };
    V r[8];
    for (int m = 0; m < 8; ++m) {  // (i, i^8): 256-bit halves
      const V a = in(2 * m), b = in(2 * m + 1);
      r[m] = add(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                 _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    }
    V s[4];
    for (int m = 0; m < 4; ++m) {  // (i, i^4): 128-bit blocks
      const V a = r[2 * m], b = r[2 * m + 1];
      s[m] = add(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                 _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
    }
    V u[2];
    for (int m = 0; m < 2; ++m) {  // (i, i^2): 64-bit pairs inside each block
      const V a = s[2 * m], b = s[2 * m + 1];
      u[m] = add(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                 _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    }
    // (i, i^1): neighbouring lanes
    return add(_mm512_shuffle_ps(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)),
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

  // --- compact_driver.inl -----------------------------------------------------------------------
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V max_zero(V v) { return _mm512_max_ps(_mm512_setzero_ps(), v); }  // NaN: v
  static V negate(V v) { return _mm512_xor_ps(v, _mm512_set1_ps(-0.0f)); }
  static unsigned not_less(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_NLT_UQ); }

  template <ElementKind K>
  static V widen(__m512i lanes_or_halves) {
    if constexpr (K == ElementKind::F16) {
      return _mm512_cvtph_ps(_mm512_castsi512_si256(lanes_or_halves));
    } else if constexpr (K == ElementKind::Bf16) {
      return _mm512_castsi512_ps(
          _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(lanes_or_halves)), 16));
    } else {
      return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_castsi512_si128(lanes_or_halves)));
    }
  }
  template <ElementKind K>
  static V load_code(const void* row, std::size_t k) {
    const auto* p = static_cast<const unsigned char*>(row) + k * (K == ElementKind::I8 ? 1 : 2);
    if constexpr (K == ElementKind::I8) {
      return widen<K>(_mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
    } else {
      return widen<K>(
          _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
    }
  }
  template <ElementKind K>
  static V load_code_partial(const void* row, std::size_t k, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(row) + k * (K == ElementKind::I8 ? 1 : 2);
    const auto mask = static_cast<__mmask16>((1u << n) - 1u);  // lanes past n are not read
    if constexpr (K == ElementKind::I8) {
      return widen<K>(_mm512_castsi128_si512(_mm_maskz_loadu_epi8(mask, p)));
    } else {
      return widen<K>(_mm512_castsi256_si512(_mm256_maskz_loadu_epi16(mask, p)));
    }
  }

  // Vectorised encoders; the last dim % 16 elements take the reference rules of compact_abi.hpp.
  template <ElementKind K>
  static void encode_row(const float* src, std::size_t dim, void* dst, float* scale) {
    std::size_t k = 0;
    if constexpr (K == ElementKind::F16) {
      auto* out = static_cast<std::uint16_t*>(dst);
      for (; k + 16 <= dim; k += 16) {
        const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(src + k),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), h);
      }
      encode_row_reference<K>(src + k, dim - k, out + k, nullptr);
    } else if constexpr (K == ElementKind::Bf16) {
      auto* out = static_cast<std::uint16_t*>(dst);
      const __m512i one = _mm512_set1_epi32(1), round = _mm512_set1_epi32(0x7FFF);
      for (; k + 16 <= dim; k += 16) {
        const __m512i bits = _mm512_castps_si512(_mm512_loadu_ps(src + k));
        const __m512i abs = _mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF));
        const __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7F800000));
        const __m512i high = _mm512_srli_epi32(bits, 16);
        __m512i r = _mm512_srli_epi32(
            _mm512_add_epi32(_mm512_add_epi32(bits, round), _mm512_and_si512(high, one)), 16);
        r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(high, _mm512_set1_epi32(0x40)));
        const __mmask16 tiny = _mm512_testn_epi32_mask(r, _mm512_set1_epi32(0x7F80));
        r = _mm512_mask_and_epi32(r, tiny, r, _mm512_set1_epi32(0x8000));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), _mm512_cvtepi32_epi16(r));
      }
      encode_row_reference<K>(src + k, dim - k, out + k, nullptr);
    } else {
      // max|x| as the largest magnitude bit pattern: for finite floats the integer order is the
      // numeric one, and infinity or NaN shows up as a pattern above FLT_MAX's.
      __m512i max_bits = _mm512_setzero_si512();
      for (; k + 16 <= dim; k += 16) {
        const __m512i abs = _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(src + k)),
                                             _mm512_set1_epi32(0x7FFFFFFF));
        max_bits = _mm512_max_epu32(max_bits, abs);
      }
      std::uint32_t top = _mm512_reduce_max_epu32(max_bits);
      for (; k < dim; ++k) {
        std::uint32_t bits;
        __builtin_memcpy(&bits, src + k, sizeof bits);
        bits &= 0x7FFFFFFFu;
        top = bits > top ? bits : top;
      }
      const bool finite = top <= 0x7F7FFFFFu;
      const float s = i8_scale(float_from_bits(top));
      *scale = finite ? s : __builtin_nanf("");
      auto* out = static_cast<signed char*>(dst);
      const bool coded = finite && s > 0.0f;
      const __m512 sv = _mm512_set1_ps(s);
      for (k = 0; k + 16 <= dim; k += 16) {
        __m512i code = coded ? _mm512_cvtps_epi32(_mm512_div_ps(_mm512_loadu_ps(src + k), sv))
                             : _mm512_setzero_si512();
        code = _mm512_min_epi32(_mm512_max_epi32(code, _mm512_set1_epi32(-127)),
                                _mm512_set1_epi32(127));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), _mm512_cvtepi32_epi8(code));
      }
      for (; k < dim; ++k) {
        float code = coded ? __builtin_nearbyintf(src[k] / s) : 0.0f;
        code = code > 127.0f ? 127.0f : (code < -127.0f ? -127.0f : code);
        out[k] = static_cast<signed char>(code);
      }
    }
  }
};
