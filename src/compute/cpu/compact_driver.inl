// Private to src/compute/cpu: the compact-set kernels (f16 / bf16 / int8 candidates, f32
// queries), written once over the unit's `Simd` policy. Included after tile_driver.inl inside the
// same anonymous namespace (it uses `smaller` and for_each_query_tile).
//
// Beyond what tile_driver.inl needs, Simd provides:
//   load_code<K>(row, k), load_code_partial<K>(row, k, n < kWidth)   decoded elements as f32
//   set1, add, sub, mul, max_zero (NaN kept), negate, store
//   not_less(a, b)                          bit i set when !(a[i] < b[i]) (a NaN lane is set)
//   encode_row<K>(src, dim, dst, scale)     one row, with the rules of compact_abi.hpp
//
// The dots of a query tile against a cache block of candidates go to a small buffer; one pass per
// query then turns them into keys and slacks and offers what can still matter.

constexpr std::size_t kCompactBlockBytes = 256 * 1024;
constexpr std::size_t kMaxCompactBlockRows = 512;

constexpr std::size_t element_bytes(ElementKind kind) { return kind == ElementKind::I8 ? 1 : 2; }

template <ElementKind K>
inline const void* code_row(const CompactRows& rows, std::size_t i) {
  return static_cast<const unsigned char*>(rows.data) + i * rows.stride * element_bytes(K);
}

inline std::size_t compact_block_rows(const CompactProblem& p) {
  const std::size_t row_bytes = p.candidates.dim * element_bytes(p.candidates.kind) + 1;
  return smaller(kCompactBlockBytes / row_bytes + 1, kMaxCompactBlockRows);
}

// dots[i * ld + j] = the sum of acc[i * NT + j]'s lanes, times scales[j] when scales is given.
// A full register tile is reduced as one vector (reduce_tile adds in hsum's tree: the same bits):
// half the shuffles and a quarter of the adds of sixteen hsums, which at d = 384 cost about as
// much as the products.
template <class S, int QT, int NT>
inline void store_dots(const typename S::V* acc, const float* scales, float* dots, std::size_t ld) {
  if constexpr (S::kVectorTile && QT == S::kTileQ && NT == S::kTileN) {
    auto sums = S::reduce_tile(acc);
    if (scales != nullptr) sums = S::mul(sums, S::candidate_lanes(scales));
    S::store_tile(sums, dots, ld);
  } else {
#pragma GCC unroll 8
    for (int j = 0; j < NT; ++j) {
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) {
        const float dot = S::hsum(acc[i * NT + j]);
        dots[i * ld + j] = scales != nullptr ? scales[j] * dot : dot;
      }
    }
  }
}

// dots[i * ld + j] = queries[q + i] . decode(candidates[c + j]), the rows widened to f32.
template <class S, ElementKind K>
struct WideningTile {
  // Candidates per tile of a short query tile (a scan). One sequential stream reads f16 / bf16
  // rows fastest, as for f32 (tile_driver.inl's kRowTileN); int8 rows are four times shorter, so
  // one candidate's chain of dependent FMAs, not memory, would bound the scan: four chains.
  // Measured at N = 1M, d = 768, Q = 1 on a 2-vCPU Zen 5: int8 26-30 -> 24-26 ms with 4, bf16
  // 40-45 -> 48-55 ms. A pair's sum does not depend on the tile, so neither do the scores.
  static constexpr int kScanTileN = K == ElementKind::I8 ? S::kTileN : 1;

  template <int QT, int NT>
  static void tile(const CompactProblem& p, std::size_t q, std::size_t c, float* dots,
                   std::size_t ld) {
    using V = typename S::V;
    const std::size_t dim = p.queries.dim;
    const float* qrow[QT];
    const void* crow[NT];
#pragma GCC unroll 8
    for (int i = 0; i < QT; ++i) qrow[i] = p.queries.data + (q + i) * p.queries.stride;
#pragma GCC unroll 8
    for (int j = 0; j < NT; ++j) crow[j] = code_row<K>(p.candidates, c + j);
    V acc[QT * NT];
#pragma GCC unroll 16
    for (int i = 0; i < QT * NT; ++i) acc[i] = S::zero();
    const std::size_t ahead = NT * p.candidates.stride * element_bytes(K);
    std::size_t k = 0;
    for (; k + S::kWidth <= dim; k += S::kWidth) {
      V qv[QT];
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) qv[i] = S::load(qrow[i] + k);
#pragma GCC unroll 8
      for (int j = 0; j < NT; ++j) {
        __builtin_prefetch(static_cast<const char*>(crow[j]) + k * element_bytes(K) + ahead, 0, 3);
        const V cv = S::template load_code<K>(crow[j], k);
#pragma GCC unroll 8
        for (int i = 0; i < QT; ++i) acc[i * NT + j] = S::fmadd(qv[i], cv, acc[i * NT + j]);
      }
    }
    if (k < dim) {
      V qv[QT];
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) qv[i] = S::load_partial(qrow[i] + k, dim - k);
#pragma GCC unroll 8
      for (int j = 0; j < NT; ++j) {
        const V cv = S::template load_code_partial<K>(crow[j], k, dim - k);
#pragma GCC unroll 8
        for (int i = 0; i < QT; ++i) acc[i * NT + j] = S::fmadd(qv[i], cv, acc[i * NT + j]);
      }
    }
    store_dots<S, QT, NT>(acc, K == ElementKind::I8 ? p.candidates.scales + c : nullptr, dots, ld);
  }
};

// Query q's dots against candidates [cb, ce) -> keys (as tile_driver.inl's key_of) and slacks;
// offers every candidate whose key + slack is not under the list's floor.
template <class S, MetricKind M>
inline void offer_row(const CompactProblem& p, std::size_t q, std::size_t cb, std::size_t ce,
                      const float* dots, SurvivorList& list) {
  using V = typename S::V;
  const V qt = S::set1(M == MetricKind::Dot ? 0.0f : p.query_term[q]);
  const V two = S::set1(2.0f);
  const V s = S::set1(p.exact ? p.query_scale[q] : 0.0f);
  const V r = S::set1(p.exact ? p.query_round[q] : 0.0f);
  const V t = S::set1(p.exact ? p.query_add[q] : 0.0f);
  float keys[S::kWidth];
  float slacks[S::kWidth];
  for (std::size_t c = cb; c < ce; c += S::kWidth) {
    const std::size_t n = smaller(S::kWidth, ce - c);
    const auto load = [n](const float* x) {
      return n == S::kWidth ? S::load(x) : S::load_partial(x, n);
    };
    const V dot = load(dots + (c - cb));
    V key = dot;
    if constexpr (M == MetricKind::Cosine) {
      key = S::mul(S::mul(dot, qt), load(p.candidate_term + c));
    } else if constexpr (M == MetricKind::L2) {
      key =
          S::negate(S::max_zero(S::sub(S::add(qt, load(p.candidate_term + c)), S::mul(two, dot))));
    }
    V slack = S::zero();
    if (p.exact) {
      slack = S::fmadd(s, load(p.slack.beta + c), S::fmadd(r, load(p.slack.norm + c), t));
      if (p.slack.add != nullptr) slack = S::add(slack, load(p.slack.add + c));
    }
    unsigned mask = S::not_less(S::add(key, slack), S::set1(list.floor));
    if (n < S::kWidth) mask &= (1u << n) - 1u;
    if (mask == 0) continue;
    S::store(keys, key);
    S::store(slacks, slack);
    while (mask != 0) {
      const int lane = __builtin_ctz(mask);
      mask &= mask - 1;
      survivor_offer(list, keys[lane], slacks[lane], static_cast<std::int64_t>(c + lane));
    }
  }
}

// The next cache block's rows, prefetched into L2 a few lines after each full tile, so that their
// fetch is spread over every query tile's pass of the current block. The tiles' own prefetch
// reaches only the next tile, which DRAM cannot deliver in one tile's time: without this the
// first pass over each block waited on memory. Into L2 (prefetcht1), because into L1 the next
// block evicts the tiles' rows at d = 1536. Measured on a 2-vCPU Zen 4, exact mode, interleaved
// in one process (bench/results/precision-prefetch-2026-12-04.md): bf16 300k x 384, 16-256 queries
// 1.06-1.52x faster; 1M x 768 1.07-1.36x; i8 and f16 1.03-1.41x; scans (1-3 queries) unchanged.
class NextBlockPrefetch {
 public:
  NextBlockPrefetch(const CompactProblem& p, std::size_t full_query_tiles, std::size_t block,
                    std::size_t tile_n)
      : base_(static_cast<const char*>(p.candidates.data)),
        row_bytes_(p.candidates.stride * element_bytes(p.candidates.kind)),
        block_(block) {
    const std::size_t tiles = (block + tile_n - 1) / tile_n * full_query_tiles;
    const std::size_t lines = (block * row_bytes_ + kLine - 1) / kLine;
    lines_per_tile_ = tiles == 0 ? 0 : (lines + tiles - 1) / tiles;
  }
  // At the start of the block that ends at row ce; the search ends at row c1.
  void start(std::size_t ce, std::size_t c1) {
    next_ = base_ + ce * row_bytes_;
    end_ = base_ + smaller(ce + block_, c1) * row_bytes_;
  }
  void after_tile() {
    for (std::size_t l = 0; l < lines_per_tile_ && next_ < end_; ++l, next_ += kLine) {
      __builtin_prefetch(next_, 0, 2);
    }
  }

 private:
  static constexpr std::size_t kLine = 64;
  const char* base_;
  std::size_t row_bytes_;
  std::size_t block_;  // rows
  std::size_t lines_per_tile_ = 0;
  const char* next_ = nullptr;
  const char* end_ = nullptr;
};

template <class S, MetricKind M, class Tile>
void offer_block_impl(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                      std::size_t c1, SurvivorList* lists) {
  constexpr std::size_t ld = kMaxCompactBlockRows;
  float dots[S::kTileQ * ld];
  const std::size_t block = compact_block_rows(p);
  NextBlockPrefetch prefetch(p, (q1 - q0) / S::kTileQ, block, S::kTileN);
  for (std::size_t cb = c0; cb < c1; cb += block) {
    const std::size_t ce = smaller(cb + block, c1);
    prefetch.start(ce, c1);
    for_each_query_tile<S>(q0, q1, [&]<int QT>(std::size_t q) {
      constexpr int NT = QT < S::kTileQ ? Tile::kScanTileN : S::kTileN;
      std::size_t c = cb;
      for (; c + NT <= ce; c += NT) {
        Tile::template tile<QT, NT>(p, q, c, dots + (c - cb), ld);
        if constexpr (QT == S::kTileQ) prefetch.after_tile();
      }
      for (; c < ce; ++c) Tile::template tile<QT, 1>(p, q, c, dots + (c - cb), ld);
#pragma GCC unroll 4
      for (int i = 0; i < QT; ++i) {
        offer_row<S, M>(p, q + i, cb, ce, dots + i * ld, lists[q + i - q0]);
      }
    });
  }
}

template <class S, class Tile>
void offer_block_metric(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                        std::size_t c1, SurvivorList* lists) {
  switch (p.metric) {
    case MetricKind::Dot:
      return offer_block_impl<S, MetricKind::Dot, Tile>(p, q0, q1, c0, c1, lists);
    case MetricKind::Cosine:
      return offer_block_impl<S, MetricKind::Cosine, Tile>(p, q0, q1, c0, c1, lists);
    case MetricKind::L2:
      return offer_block_impl<S, MetricKind::L2, Tile>(p, q0, q1, c0, c1, lists);
  }
}

template <class S>
void widening_offer_block(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                          std::size_t c1, SurvivorList* lists) {
  switch (p.candidates.kind) {
    case ElementKind::F16:
      return offer_block_metric<S, WideningTile<S, ElementKind::F16>>(p, q0, q1, c0, c1, lists);
    case ElementKind::Bf16:
      return offer_block_metric<S, WideningTile<S, ElementKind::Bf16>>(p, q0, q1, c0, c1, lists);
    case ElementKind::I8:
      return offer_block_metric<S, WideningTile<S, ElementKind::I8>>(p, q0, q1, c0, c1, lists);
  }
}

template <class S>
void encode_rows(Rows src, ElementKind kind, void* dst, std::size_t dst_stride, float* scales) {
  for (std::size_t r = 0; r < src.rows; ++r) {
    const float* row = src.data + r * src.stride;
    void* out = static_cast<unsigned char*>(dst) + r * dst_stride * element_bytes(kind);
    switch (kind) {
      case ElementKind::F16:
        S::template encode_row<ElementKind::F16>(row, src.dim, out, nullptr);
        break;
      case ElementKind::Bf16:
        S::template encode_row<ElementKind::Bf16>(row, src.dim, out, nullptr);
        break;
      case ElementKind::I8:
        S::template encode_row<ElementKind::I8>(row, src.dim, out, scales + r);
        break;
    }
  }
}

template <class S, ElementKind K>
void decode_codes(const void* codes, std::size_t dim, float scale, float* out) {
  using V = typename S::V;
  std::size_t k = 0;
  for (; k + S::kWidth <= dim; k += S::kWidth) {
    V v = S::template load_code<K>(codes, k);
    if constexpr (K == ElementKind::I8) v = S::mul(v, S::set1(scale));
    S::store(out + k, v);
  }
  if (k == dim) return;
  V v = S::template load_code_partial<K>(codes, k, dim - k);
  if constexpr (K == ElementKind::I8) v = S::mul(v, S::set1(scale));
  alignas(64) float tail[S::kWidth];
  S::store(tail, v);
  for (std::size_t i = k; i < dim; ++i) out[i] = tail[i - k];
}

template <class S>
void decode_row(const void* codes, ElementKind kind, std::size_t dim, float scale, float* out) {
  switch (kind) {
    case ElementKind::F16:
      return decode_codes<S, ElementKind::F16>(codes, dim, scale, out);
    case ElementKind::Bf16:
      return decode_codes<S, ElementKind::Bf16>(codes, dim, scale, out);
    case ElementKind::I8:
      return decode_codes<S, ElementKind::I8>(codes, dim, scale, out);
  }
}

template <class S>
constexpr CompactKernelTable make_compact_table(const char* name) {
  return CompactKernelTable{name, QueryCoding::F32, &widening_offer_block<S>, &encode_rows<S>,
                            &decode_row<S>};
}
