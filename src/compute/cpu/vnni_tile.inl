// Private to src/compute/cpu: the vpdpbusd tile of the int8 kernels (kernels_compact_avx512vnni
// .cpp, kernels_compact_avxvnni.cpp), included inside their anonymous namespace after
// compact_driver.inl. The queries are int8 codes + 128 (unsigned), the rows int8 codes; the row's
// code sum takes the 128 back out, so the int32 sums are exact. Ops O gives the ISA's pieces:
//   I                      an integer vector of O::kBytes codes
//   zero(), load(p)        a zero vector; kBytes codes at p
//   load_tail(p, n)        the n < kBytes codes at p, then zeros (nothing past them is read)
//   dpbusd(acc, u, s)      acc + the 4-byte groups' sums of unsigned u x signed s
//   sum(v)                 the sum of v's int32 lanes
//   kTileSums              true when O provides tile_sums:
//   tile_sums(acc, code_sums)   a full Simd tile's sums less 128 x each row's code sum, as
//                          floats in lane i * Simd::kTileN + j (the int32 sums are exact, so
//                          the order of their adds does not matter)

// dots[i * ld + j] = q'[q + i] . c'[c + j], O::kBytes codes a step.
template <class O, int TileN>
struct VnniTile {
  static constexpr int kScanTileN = TileN;  // int8 rows: several chains (see WideningTile)

  template <int QT, int NT>
  static void tile(const CompactProblem& p, std::size_t q, std::size_t c, float* dots,
                   std::size_t ld) {
    using I = typename O::I;
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
    I acc[QT * NT];
#pragma GCC unroll 16
    for (int i = 0; i < QT * NT; ++i) acc[i] = O::zero();
    const std::size_t ahead = NT * p.candidates.stride;
    std::size_t k = 0;
    for (; k + O::kBytes <= dim; k += O::kBytes) {
      I qv[QT];
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) qv[i] = O::load(qrow[i] + k);
#pragma GCC unroll 8
      for (int j = 0; j < NT; ++j) {
        __builtin_prefetch(crow[j] + k + ahead, 0, 3);
        const I cv = O::load(crow[j] + k);
#pragma GCC unroll 8
        for (int i = 0; i < QT; ++i) acc[i * NT + j] = O::dpbusd(acc[i * NT + j], qv[i], cv);
      }
    }
    if (k < dim) {
      // Codes past dim are zero on both sides, so they add nothing.
      I qv[QT];
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) qv[i] = O::load_tail(qrow[i] + k, dim - k);
#pragma GCC unroll 8
      for (int j = 0; j < NT; ++j) {
        const I cv = O::load_tail(crow[j] + k, dim - k);
#pragma GCC unroll 8
        for (int i = 0; i < QT; ++i) acc[i * NT + j] = O::dpbusd(acc[i * NT + j], qv[i], cv);
      }
    }
    if constexpr (O::kTileSums && QT == Simd::kTileQ && NT == Simd::kTileN) {
      // One vector for the tile: at d = 384 sixteen horizontal sums cost more than the products.
      auto tile = O::tile_sums(acc, p.candidates.code_sums + c);
      tile = Simd::mul(Simd::mul(tile, Simd::query_lanes(p.query_code_scale + q)),
                       Simd::candidate_lanes(p.candidates.scales + c));
      Simd::store_tile(tile, dots, ld);
      return;
    }
#pragma GCC unroll 8
    for (int j = 0; j < NT; ++j) {
      const std::int32_t offset = 128 * p.candidates.code_sums[c + j];
      const float row_scale = p.candidates.scales[c + j];
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) {
        const std::int32_t sum = O::sum(acc[i * NT + j]) - offset;
        dots[i * ld + j] = (static_cast<float>(sum) * p.query_code_scale[q + i]) * row_scale;
      }
    }
  }
};
