// Private to src/compute/cpu: the AMX compact-set kernels, written once over an `Ops` policy that
// is the instructions themselves (kernels_compact_amx.cpp) or a software model of them
// (amx_model.inl, in kernels_compact_amx_model.cpp). Included inside an AVX-512 unit's anonymous
// namespace after compact_driver.inl, whose offer_row and NextBlockPrefetch it uses.
//
// The tiles: A = 16 candidate rows x 64 bytes (32 bf16 or 64 int8 codes), loaded straight from
// the rows (a CompactRows row is padded with zeros to 64 bytes, so a last chunk adds nothing);
// B = the same 64 bytes of 16 queries, packed once per search as the instructions read them (row
// kk holds 4 bytes of each query: bf16 pairs or int8 quads); C = 16 candidates x 16 queries of f32
// (Bf16: tdpbf16ps) or int32 sums (I8: tdpbsud, signed rows x unsigned queries + 128). Four C
// tiles (tmm0-3) take 64 candidates a pass; B is tmm4, A rotates over tmm5-7.
//
// Ops provides, every tile configured as 16 rows of 64 bytes:
//   configure(), release()                         load / drop the tile configuration (per thread)
//   zero<T>(), load<T>(p, stride), store<T>(p, stride)
//   dot<K, C, A, B>()                              C += A . B for ElementKind K (Bf16 or I8)
//
// The scores: I8's int32 sums are exact, so its dots have the bits of the VNNI kernels; Bf16's
// sums are added in another order than vdpbf16ps's, within the same bound (compact_rows.hpp's
// dot_rounding_bound: at most two roundings a pair, flushing covered by the absolute term).

// A thread's part of fewer queries goes to the AVX-512 kernel of the same query coding. 8 (half a
// B tile) is not measured -- no machine this was written on has AMX -- but by the instructions'
// rates a half-empty tile still does a part's products faster than the AVX-512 kernel would.
constexpr std::size_t kAmxMinQueries = 8;
constexpr std::size_t kAmxQueries = 16;
constexpr std::size_t kAmxPassRows = 64;  // candidates per pass: four C tiles

// A zeroed heap array. Not std::vector: a kernel unit must not emit weak template code compiled
// for its ISA (tests/kernel_symbols_test.sh), and this class has internal linkage.
template <class T>
class HeapArray {
 public:
  explicit HeapArray(std::size_t n) : data_(new T[n]()) {}
  ~HeapArray() { delete[] data_; }
  HeapArray(const HeapArray&) = delete;
  HeapArray& operator=(const HeapArray&) = delete;
  T* data() const { return data_; }

 private:
  T* data_;
};

// Every 16 queries' bytes [64 kc, 64 kc + 64), for each chunk kc, as B tiles: 16 rows of 16
// queries x 4 bytes, one 1 KiB tile per (group, chunk); a missing query's column is zero.
class PackedQueries {
 public:
  PackedQueries(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t code_bytes)
      : chunks_((p.queries.dim * code_bytes + 63) / 64),
        groups_((q1 - q0 + kAmxQueries - 1) / kAmxQueries),
        tiles_(groups_ * chunks_ * 256) {
    const auto* codes = static_cast<const unsigned char*>(p.query_codes);
    const std::size_t row_bytes = p.query_codes_stride * code_bytes;
    for (std::size_t q = q0; q < q1; ++q) {
      const std::size_t g = (q - q0) / kAmxQueries, n = (q - q0) % kAmxQueries;
      const unsigned char* row = codes + q * row_bytes;
      for (std::size_t kc = 0; kc < chunks_; ++kc) {
        std::uint32_t* tile = tiles_.data() + (g * chunks_ + kc) * 256;
        // The query codes' rows are zero-padded to 64 elements (QueryTerms::codes_stride).
        for (std::size_t kk = 0; kk < 16; ++kk) {
          std::memcpy(tile + kk * 16 + n, row + kc * 64 + kk * 4, 4);
        }
      }
    }
  }
  std::size_t chunks() const { return chunks_; }
  std::size_t groups() const { return groups_; }
  const std::uint32_t* tile(std::size_t group, std::size_t chunk) const {
    return tiles_.data() + (group * chunks_ + chunk) * 256;
  }

 private:
  std::size_t chunks_, groups_;
  HeapArray<std::uint32_t> tiles_;
};

// The tile configuration is per thread: loaded for one offer_block call and dropped after it,
// also when an offer throws (survivor_select allocates).
template <class Ops>
struct TileScope {
  TileScope() { Ops::configure(); }
  ~TileScope() { Ops::release(); }
  TileScope(const TileScope&) = delete;
  TileScope& operator=(const TileScope&) = delete;
};

// out[n * ld + m] = in[m * 16 + n] for a 16 x 16 block of floats.
inline void transpose16(const float* in, float* out, std::size_t ld) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(in + 16 * i);
  for (int i = 0; i < 16; i += 2) {  // 32-bit pairs of rows i, i + 1
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // 64-bit: four rows' columns j, j + 4, j + 8, j + 12
    const auto lo = [](__m512 a, __m512 b) {
      return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
    };
    const auto hi = [](__m512 a, __m512 b) {
      return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
    };
    r[i] = lo(t[i], t[i + 2]);      // column 0 (+4, +8, +12)
    r[i + 1] = hi(t[i], t[i + 2]);  // column 1
    r[i + 2] = lo(t[i + 1], t[i + 3]);
    r[i + 3] = hi(t[i + 1], t[i + 3]);
  }
  // r[4 g + j]: rows 4g..4g+3 of columns j, j + 4, j + 8, j + 12 (one 128-bit block each).
  for (int j = 0; j < 4; ++j) {
    const __m512 a = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);       // cols j, j + 8 of rows 0-7
    const __m512 b = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xDD);       // cols j + 4, j + 12
    const __m512 c = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);  // rows 8-15
    const __m512 d = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xDD);
    _mm512_storeu_ps(out + j * ld, _mm512_shuffle_f32x4(a, c, 0x88));
    _mm512_storeu_ps(out + (j + 8) * ld, _mm512_shuffle_f32x4(a, c, 0xDD));
    _mm512_storeu_ps(out + (j + 4) * ld, _mm512_shuffle_f32x4(b, d, 0x88));
    _mm512_storeu_ps(out + (j + 12) * ld, _mm512_shuffle_f32x4(b, d, 0xDD));
  }
}

template <class Ops, int T>
inline void amx_load_rows(const unsigned char* rows, std::size_t row_bytes, std::size_t avail,
                          std::size_t chunk, unsigned char* scratch) {
  if (avail >= 16) {
    Ops::template load<T>(rows + chunk * 64, row_bytes);
    return;
  }
  // The set's last rows: a zero-padded copy, so the load reads nothing past the rows.
  std::memset(scratch, 0, 16 * 64);
  for (std::size_t r = 0; r < avail; ++r)
    std::memcpy(scratch + r * 64, rows + r * row_bytes + chunk * 64, 64);
  Ops::template load<T>(scratch, 64);
}

// sums[t] (16 x 16, candidate-major) <- candidates [c, c + 16 NT) . group g's queries.
template <class Ops, ElementKind K, int NT>
inline void amx_pass(const CompactProblem& p, const PackedQueries& packed, std::size_t g,
                     std::size_t c, std::size_t row_bytes, float (*sums)[256],
                     unsigned char* scratch) {
  const auto* base = static_cast<const unsigned char*>(p.candidates.data) + c * row_bytes;
  const std::size_t avail = p.candidates.rows - c;  // rows readable from c
  const auto a_rows = [&](int t) { return base + static_cast<std::size_t>(t) * 16 * row_bytes; };
  const auto a_avail = [&](int t) {
    const std::size_t skip = static_cast<std::size_t>(t) * 16;
    return avail > skip ? avail - skip : 0;
  };
  Ops::template zero<0>();
  if constexpr (NT > 1) Ops::template zero<1>();
  if constexpr (NT > 2) Ops::template zero<2>();
  if constexpr (NT > 3) Ops::template zero<3>();
  for (std::size_t kc = 0; kc < packed.chunks(); ++kc) {
    Ops::template load<4>(packed.tile(g, kc), 64);
    amx_load_rows<Ops, 5>(a_rows(0), row_bytes, a_avail(0), kc, scratch);
    Ops::template dot<K, 0, 5, 4>();
    if constexpr (NT > 1) {
      amx_load_rows<Ops, 6>(a_rows(1), row_bytes, a_avail(1), kc, scratch + 1024);
      Ops::template dot<K, 1, 6, 4>();
    }
    if constexpr (NT > 2) {
      amx_load_rows<Ops, 7>(a_rows(2), row_bytes, a_avail(2), kc, scratch + 2048);
      Ops::template dot<K, 2, 7, 4>();
    }
    if constexpr (NT > 3) {
      amx_load_rows<Ops, 5>(a_rows(3), row_bytes, a_avail(3), kc, scratch + 3072);
      Ops::template dot<K, 3, 5, 4>();
    }
  }
  Ops::template store<0>(sums[0], 64);
  if constexpr (NT > 1) Ops::template store<1>(sums[1], 64);
  if constexpr (NT > 2) Ops::template store<2>(sums[2], 64);
  if constexpr (NT > 3) Ops::template store<3>(sums[3], 64);
}

// I8: the code scales of queries [q, q + nq) in lanes 0..nq-1 (0 in a padded query's lane).
inline __m512 query_scale_lanes(const CompactProblem& p, std::size_t q, std::size_t nq) {
  alignas(64) float qscale[16] = {};
  for (std::size_t n = 0; n < nq; ++n) qscale[n] = p.query_code_scale[q + n];
  return _mm512_load_ps(qscale);
}

// I8: tile t's int32 sums (candidate-major, in place) -> (float(sum - 128 code sum) x query
// scale) x row scale, the VNNI kernels' formula and order; qs from query_scale_lanes.
// Rows past the set's end (a zero-padded tile) are left as they are: nobody reads them.
inline void decode_i8_sums(const CompactProblem& p, __m512 qs, std::size_t c, float* sums) {
  const std::size_t rows = smaller<std::size_t>(16, p.candidates.rows - c);
  for (std::size_t m = 0; m < rows; ++m) {
    const __m512i raw = _mm512_loadu_si512(sums + 16 * m);
    const __m512i offset = _mm512_set1_epi32(128 * p.candidates.code_sums[c + m]);
    const __m512 dot = _mm512_cvtepi32_ps(_mm512_sub_epi32(raw, offset));
    _mm512_storeu_ps(sums + 16 * m, _mm512_mul_ps(_mm512_mul_ps(dot, qs),
                                                  _mm512_set1_ps(p.candidates.scales[c + m])));
  }
}

template <class Ops, ElementKind K, MetricKind M>
void amx_offer_impl(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                    std::size_t c1, SurvivorList* lists) {
  constexpr std::size_t ld = kMaxCompactBlockRows;
  const std::size_t row_bytes = p.candidates.stride * element_bytes(K);
  const PackedQueries packed(p, q0, q1, element_bytes(K));
  const std::size_t whole = compact_block_rows(p) / kAmxPassRows * kAmxPassRows;
  const std::size_t block = whole < kAmxPassRows ? kAmxPassRows : whole;  // whole passes
  alignas(64) float sums[4][256];
  alignas(64) unsigned char scratch[4 * 1024];
  // 32 KiB: on the heap, since a Sequential search may run on a fiber's 64 KiB stack.
  const HeapArray<float> dot_rows(kAmxQueries * ld);
  float* const dots = dot_rows.data();
  NextBlockPrefetch prefetch(p, packed.groups(), block, kAmxPassRows);
  const TileScope<Ops> tiles;
  for (std::size_t cb = c0; cb < c1; cb += block) {
    const std::size_t ce = smaller(cb + block, c1);
    prefetch.start(ce, c1);
    for (std::size_t g = 0; g < packed.groups(); ++g) {
      const std::size_t q = q0 + g * kAmxQueries;
      const std::size_t nq = smaller(kAmxQueries, q1 - q);
      const __m512 qs = K == ElementKind::I8 ? query_scale_lanes(p, q, nq) : _mm512_setzero_ps();
      for (std::size_t c = cb; c < ce; c += kAmxPassRows) {
        const std::size_t n = smaller(kAmxPassRows, ce - c);
        const std::size_t nt = (n + 15) / 16;
        if (nt == 4)
          amx_pass<Ops, K, 4>(p, packed, g, c, row_bytes, sums, scratch);
        else if (nt == 3)
          amx_pass<Ops, K, 3>(p, packed, g, c, row_bytes, sums, scratch);
        else if (nt == 2)
          amx_pass<Ops, K, 2>(p, packed, g, c, row_bytes, sums, scratch);
        else
          amx_pass<Ops, K, 1>(p, packed, g, c, row_bytes, sums, scratch);
        prefetch.after_tile();
        for (std::size_t t = 0; t < nt; ++t) {
          const std::size_t ct = c + 16 * t;
          if constexpr (K == ElementKind::I8) decode_i8_sums(p, qs, ct, sums[t]);
          // Blocks are whole passes, so ct - cb + 16 <= block <= ld.
          transpose16(sums[t], dots + (ct - cb), ld);
        }
      }
      for (std::size_t i = 0; i < nq; ++i) {
        offer_row<Simd, M>(p, q + i, cb, ce, dots + i * ld, lists[q + i - q0]);
      }
    }
  }
}

// Queries [q0, q1) x candidates [c0, c1): on the tiles for kAmxMinQueries queries or more, else
// by `narrow` (the AVX-512 kernel reading the queries in the same coding).
template <class Ops, ElementKind K>
void amx_offer_block(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                     std::size_t c1, SurvivorList* lists, const CompactKernelTable& narrow) {
  if (q1 - q0 < kAmxMinQueries) return narrow.offer_block(p, q0, q1, c0, c1, lists);
  switch (p.metric) {
    case MetricKind::Dot:
      return amx_offer_impl<Ops, K, MetricKind::Dot>(p, q0, q1, c0, c1, lists);
    case MetricKind::Cosine:
      return amx_offer_impl<Ops, K, MetricKind::Cosine>(p, q0, q1, c0, c1, lists);
    case MetricKind::L2:
      return amx_offer_impl<Ops, K, MetricKind::L2>(p, q0, q1, c0, c1, lists);
  }
}
