// Private to src/compute/cpu: the portable vector policy (eight float lanes in plain C++) of
// tile_driver.inl and compact_driver.inl.
struct Simd {
  struct V {
    float lane[8];
  };
  static constexpr std::size_t kWidth = 8;
  static constexpr int kTileQ = 2;
  static constexpr int kTileN = 2;
  static constexpr bool kVectorTile = false;

  static V zero() {
    V v;
    for (float& x : v.lane) x = 0.0f;
    return v;
  }
  static V load(const float* p) {
    V v;
    for (std::size_t i = 0; i < kWidth; ++i) v.lane[i] = p[i];
    return v;
  }
  static V load_partial(const float* p, std::size_t n) {
    V v = zero();
    for (std::size_t i = 0; i < n; ++i) v.lane[i] = p[i];
    return v;
  }
  static V fmadd(V a, V b, V acc) {
    for (std::size_t i = 0; i < kWidth; ++i) acc.lane[i] = acc.lane[i] + a.lane[i] * b.lane[i];
    return acc;
  }
  static float hsum(V v) {
    const float s0 = v.lane[0] + v.lane[4], s1 = v.lane[1] + v.lane[5];
    const float s2 = v.lane[2] + v.lane[6], s3 = v.lane[3] + v.lane[7];
    return (s0 + s2) + (s1 + s3);
  }

  // --- compact_driver.inl -----------------------------------------------------------------------
  template <class Op>
  static V each(V a, V b, Op op) {
    for (std::size_t i = 0; i < kWidth; ++i) a.lane[i] = op(a.lane[i], b.lane[i]);
    return a;
  }
  static V set1(float x) {
    V v;
    for (float& lane : v.lane) lane = x;
    return v;
  }
  static V add(V a, V b) {
    return each(a, b, [](float x, float y) { return x + y; });
  }
  static V sub(V a, V b) {
    return each(a, b, [](float x, float y) { return x - y; });
  }
  static V mul(V a, V b) {
    return each(a, b, [](float x, float y) { return x * y; });
  }
  static V max_zero(V v) {
    return each(v, v, [](float x, float) { return 0.0f > x ? 0.0f : x; });
  }
  static V negate(V v) {
    return each(v, v, [](float x, float) { return -x; });
  }
  static unsigned not_less(V a, V b) {
    unsigned mask = 0;
    for (std::size_t i = 0; i < kWidth; ++i) mask |= (a.lane[i] < b.lane[i] ? 0u : 1u) << i;
    return mask;
  }
  static void store(float* out, V v) {
    for (std::size_t i = 0; i < kWidth; ++i) out[i] = v.lane[i];
  }

  template <ElementKind K>
  static float decode(const void* row, std::size_t i) {
    if constexpr (K == ElementKind::I8) {
      return static_cast<float>(static_cast<const signed char*>(row)[i]);
    } else if constexpr (K == ElementKind::F16) {
      return float_from_f16(static_cast<const std::uint16_t*>(row)[i]);
    } else {
      return float_from_bf16(static_cast<const std::uint16_t*>(row)[i]);
    }
  }
  template <ElementKind K>
  static V load_code_partial(const void* row, std::size_t k, std::size_t n) {
    V v = zero();
    for (std::size_t i = 0; i < n; ++i) v.lane[i] = decode<K>(row, k + i);
    return v;
  }
  template <ElementKind K>
  static V load_code(const void* row, std::size_t k) {
    return load_code_partial<K>(row, k, kWidth);
  }
  template <ElementKind K>
  static void encode_row(const float* src, std::size_t dim, void* dst, float* scale) {
    encode_row_reference<K>(src, dim, dst, scale);
  }
};
