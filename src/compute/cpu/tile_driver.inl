// Private to src/compute/cpu: the register-blocked micro-kernel and its loops, written once over a
// `Simd` policy. Each kernel unit includes this file inside an anonymous namespace, after defining
// `Simd`, so every instantiation has internal linkage and is compiled for that unit's ISA only.
//
// Simd provides:
//   V, kWidth                      vector type and its float lanes
//   kTileQ, kTileN                 the full register tile: kTileQ queries x kTileN candidates
//   kVectorTile                    true when kTileQ * kTileN == kWidth and the tile's scores can
//                                  be reduced into one vector (then reduce_tile, keys, pass_mask,
//                                  store_tile, store are provided)
//   zero(), load(p), load_partial(p, n < kWidth) (zero-filled), fmadd(a, b, acc) = acc + a * b
//   hsum(v)                        sums the lanes in the same tree as reduce_tile, so a score is
//                                  bit-identical whichever tile shape computed it
//
// Tile: accumulators run along the dimension (one vector per query x candidate pair), so rows
// are read with plain unaligned loads at any stride and odd dims take one masked step.

template <class T>
constexpr T smaller(T a, T b) {
  return a < b ? a : b;
}

// Candidate rows per cache block: a block stays in L2 while every query tile passes over it.
constexpr std::size_t kCandidateBlockBytes = 256 * 1024;
// At most this many rows per block, so a block's candidate terms fit a small stack array (only
// dims under 64 reach it).
constexpr std::size_t kMaxBlockRows = 1024;
constexpr std::size_t kDimChunk = 512;             // see tile_row
constexpr std::size_t kChunkAboveDim = 1024;       // see tile_row
constexpr std::size_t kMaxChunkedBlockRows = 128;  // see tile_row

// When all queries fit in this much cache, each candidate tile streams past every query tile
// once (a block of one tile): DRAM reads spread evenly over the compute instead of stalling at
// the start of each block.
constexpr std::size_t kStreamQueryBytes = 384 * 1024;

template <class S>
std::size_t candidate_block_rows(std::size_t queries, std::size_t dim) {
  const bool chunked = dim > kChunkAboveDim;
  if (!chunked && queries * dim * sizeof(float) <= kStreamQueryBytes) return S::kTileN;
  std::size_t rows = smaller(kCandidateBlockBytes / (dim * sizeof(float) + 1), kMaxBlockRows);
  if (chunked) rows = smaller(rows, kMaxChunkedBlockRows);
  rows -= rows % S::kTileN;
  return rows < S::kTileN ? S::kTileN : rows;
}

// acc[qi * NT + ci] += sum over dims [k0, k1) of queries[q + qi] * candidates[c + ci].
// k0 is a multiple of kWidth; only a range ending at dim takes the masked tail step, so splitting
// the dimension into chunks adds the same products in the same order.
// With kNorms, also norms[ci] += candidates[c + ci] . candidates[c + ci] from the same loads: the
// products and their order are those of rows_sq_norms, so the norm has the same bits.
template <class S, int QT, int NT, bool kNorms = false>
inline void accumulate_tile(const Problem& p, std::size_t q, std::size_t c, std::size_t k0,
                            std::size_t k1, typename S::V* acc, typename S::V* norms = nullptr) {
  using V = typename S::V;
  const float* qrow[QT];
  const float* crow[NT];
#pragma GCC unroll 8
  for (int i = 0; i < QT; ++i) qrow[i] = p.queries.data + (q + i) * p.queries.stride;
#pragma GCC unroll 8
  for (int j = 0; j < NT; ++j) crow[j] = p.candidates.data + (c + j) * p.candidates.stride;

  std::size_t k = k0;
  for (; k + S::kWidth <= k1; k += S::kWidth) {
    V qv[QT];
#pragma GCC unroll 8
    for (int i = 0; i < QT; ++i) qv[i] = S::load(qrow[i] + k);
#pragma GCC unroll 8
    for (int j = 0; j < NT; ++j) {
      // The same offset of the row NT rows ahead, i.e. the next tile (a prefetch never faults).
      // Measured on one Zen 4 core: Q = 16, 20k x 768: 8.3 -> 7.5 ms; a one-query scan: no change.
      __builtin_prefetch(crow[j] + k + NT * p.candidates.stride, 0, 3);
      const V cv = S::load(crow[j] + k);
      if constexpr (kNorms) norms[j] = S::fmadd(cv, cv, norms[j]);
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) acc[i * NT + j] = S::fmadd(qv[i], cv, acc[i * NT + j]);
    }
  }
  if (k < k1) {
    const std::size_t rest = k1 - k;
    V qv[QT];
#pragma GCC unroll 8
    for (int i = 0; i < QT; ++i) qv[i] = S::load_partial(qrow[i] + k, rest);
#pragma GCC unroll 8
    for (int j = 0; j < NT; ++j) {
      const V cv = S::load_partial(crow[j] + k, rest);
      if constexpr (kNorms) norms[j] = S::fmadd(cv, cv, norms[j]);
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) acc[i * NT + j] = S::fmadd(qv[i], cv, acc[i * NT + j]);
    }
  }
}

// The ranking key of one dot product (see Problem in kernel_abi.hpp). The vector forms in each
// Simd perform exactly these operations in this order, so both paths give the same bits.
template <MetricKind M>
inline float key_of(float dot, float query_term, float candidate_term) {
  if constexpr (M == MetricKind::Dot) {
    return dot;
  } else if constexpr (M == MetricKind::Cosine) {
    return (dot * query_term) * candidate_term;
  } else {
    float dist = (query_term + candidate_term) - 2.0f * dot;
    dist = (0.0f > dist) ? 0.0f : dist;  // keeps NaN, like maxps(0, dist)
    return -dist;
  }
}

// ct: the candidate terms of this tile's NT candidates (unused for Dot).
template <class S, MetricKind M, int QT, int NT>
inline void scalar_tile_keys(const Problem& p, std::size_t q, const float* ct,
                             const typename S::V* acc, float* keys) {
#pragma GCC unroll 16
  for (int i = 0; i < QT; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < NT; ++j) {
      const float qt = (M == MetricKind::Dot) ? 0.0f : p.query_term[q + i];
      const float cj = (M == MetricKind::Dot) ? 0.0f : ct[j];
      keys[i * NT + j] = key_of<M>(S::hsum(acc[i * NT + j]), qt, cj);
    }
  }
}

// Turns a tile's accumulators into keys and offers the survivors to lists[0..QT).
template <class S, MetricKind M, int QT, int NT>
inline void topk_finish(const Problem& p, std::size_t q, std::size_t c, const float* ct,
                        const typename S::V* acc, TopKList* lists) {
  float keys[QT * NT];
  if constexpr (S::kVectorTile && QT == S::kTileQ && NT == S::kTileN) {
    const auto key_vec = S::template keys<M>(S::reduce_tile(acc), p.query_term + q, ct);
    unsigned mask = S::pass_mask(key_vec, lists);
    if (mask == 0) return;
    S::store(keys, key_vec);
    while (mask != 0) {
      const int lane = __builtin_ctz(mask);
      mask &= mask - 1;
      topk_offer(lists[lane / NT], keys[lane], static_cast<std::int64_t>(c + lane % NT));
    }
  } else {
    scalar_tile_keys<S, M, QT, NT>(p, q, ct, acc, keys);
#pragma GCC unroll 16
    for (int i = 0; i < QT; ++i) {
      TopKList& list = lists[i];
#pragma GCC unroll 16
      for (int j = 0; j < NT; ++j) {
        const float key = keys[i * NT + j];
        if (list.open || key >= list.threshold) {
          topk_offer(list, key, static_cast<std::int64_t>(c + j));
        }
      }
    }
  }
}

// Turns a tile's accumulators into keys stored at out[qi * ld + ci].
template <class S, MetricKind M, int QT, int NT>
inline void keys_finish(const Problem& p, std::size_t q, const float* ct, const typename S::V* acc,
                        float* out, std::size_t ld) {
  if constexpr (S::kVectorTile && QT == S::kTileQ && NT == S::kTileN) {
    S::store_tile(S::template keys<M>(S::reduce_tile(acc), p.query_term + q, ct), out, ld);
  } else {
    float keys[QT * NT];
    scalar_tile_keys<S, M, QT, NT>(p, q, ct, acc, keys);
#pragma GCC unroll 16
    for (int i = 0; i < QT; ++i) {
#pragma GCC unroll 16
      for (int j = 0; j < NT; ++j) out[i * ld + j] = keys[i * NT + j];
    }
  }
}

// Candidates per tile in a row of QT queries. A short query tile (a scan of 1-3 queries) is
// memory-bound: it reads one candidate row at a time, because a single sequential stream keeps
// more DRAM reads in flight than kTileN interleaved rows (measured: 22 vs 15 GB/s on one Zen 4
// core). Full query tiles are compute-bound and take kTileN candidates to reuse each query load.
template <class S, int QT>
constexpr int kRowTileN = QT < S::kTileQ ? 1 : S::kTileN;

// Rows longer than kChunkAboveDim are processed by full query tiles in chunks of kDimChunk
// floats (a multiple of every kWidth): a 4-row query tile and a 4-row candidate tile at d = 1536
// take 48 KiB, more than L1, whereas their chunks stay in L1 while the query tile's chunk is
// reused across a block of candidates (d = 1536, Q = 256: 188 -> 157 ms on one Zen 4 core).
// Between chunks the accumulators wait in `scratch`, so every sum is unchanged, bit for bit.
// Short query tiles (scans) are never chunked: they reuse nothing, and splitting a row into
// passes breaks their sequential stream (d = 768, Q = 1: 13 -> 28 ms when tried).

// QT queries against candidates [cb, ce): finish.template operator()<NT>(c, acc) receives the
// accumulators of each tile, in increasing candidate order.
template <class S, int QT, class Finish>
inline void tile_row(const Problem& p, std::size_t q, std::size_t cb, std::size_t ce,
                     Finish&& finish) {
  using V = typename S::V;
  constexpr int NT = kRowTileN<S, QT>;
  const std::size_t dim = p.queries.dim;
  if (QT < S::kTileQ || dim <= kChunkAboveDim) {
    std::size_t c = cb;
    for (; c + NT <= ce; c += NT) {
      V acc[QT * NT];
#pragma GCC unroll 16
      for (int i = 0; i < QT * NT; ++i) acc[i] = S::zero();
      accumulate_tile<S, QT, NT>(p, q, c, 0, dim, acc);
      finish.template operator()<NT>(c, acc);
    }
    for (; c < ce; ++c) {
      V acc[QT];
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) acc[i] = S::zero();
      accumulate_tile<S, QT, 1>(p, q, c, 0, dim, acc);
      finish.template operator()<1>(c, acc);
    }
    return;
  }
  V scratch[kMaxChunkedBlockRows * QT];  // ce - cb <= kMaxChunkedBlockRows (see the caller)
  for (std::size_t k0 = 0; k0 < dim; k0 += kDimChunk) {
    const std::size_t k1 = smaller(k0 + kDimChunk, dim);
    V* slot = scratch;
    std::size_t c = cb;
    for (; c + NT <= ce; c += NT, slot += QT * NT) {
      V acc[QT * NT];
#pragma GCC unroll 16
      for (int i = 0; i < QT * NT; ++i) acc[i] = k0 == 0 ? S::zero() : slot[i];
      accumulate_tile<S, QT, NT>(p, q, c, k0, k1, acc);
      if (k1 == dim) {
        finish.template operator()<NT>(c, acc);
      } else {
#pragma GCC unroll 16
        for (int i = 0; i < QT * NT; ++i) slot[i] = acc[i];
      }
    }
    for (; c < ce; ++c, slot += QT) {
      V acc[QT];
#pragma GCC unroll 8
      for (int i = 0; i < QT; ++i) acc[i] = k0 == 0 ? S::zero() : slot[i];
      accumulate_tile<S, QT, 1>(p, q, c, k0, k1, acc);
      if (k1 == dim) {
        finish.template operator()<1>(c, acc);
      } else {
#pragma GCC unroll 8
        for (int i = 0; i < QT; ++i) slot[i] = acc[i];
      }
    }
  }
}

// Calls body.template operator()<R>(q) for each query tile: full tiles of kTileQ, then one
// tile of the R < kTileQ remaining queries.
template <class S, class Body>
inline void for_each_query_tile(std::size_t q0, std::size_t q1, Body&& body) {
  std::size_t q = q0;
  for (; q + S::kTileQ <= q1; q += S::kTileQ) body.template operator()<S::kTileQ>(q);
  const std::size_t rest = q1 - q;
  if constexpr (S::kTileQ > 1) {
    if (rest == 1) body.template operator()<1>(q);
  }
  if constexpr (S::kTileQ > 2) {
    if (rest == 2) body.template operator()<2>(q);
  }
  if constexpr (S::kTileQ > 3) {
    if (rest == 3) body.template operator()<3>(q);
  }
  static_assert(S::kTileQ <= 4, "extend for_each_query_tile for taller tiles");
}

// out[j] = |rows[i + j]|^2 for j < R, with the same accumulation and reduction as any q.c of this
// ISA (a row against itself), so an L2 or Cosine key built from it is what the row against itself
// would give. R rows at once keep R independent FMA chains in flight.
template <class S, int R>
inline void rows_sq_norms(Rows rows, std::size_t i, float* out) {
  using V = typename S::V;
  const float* row[R];
  V acc[R];
#pragma GCC unroll 8
  for (int j = 0; j < R; ++j) {
    row[j] = rows.data + (i + j) * rows.stride;
    acc[j] = S::zero();
  }
  std::size_t k = 0;
  for (; k + S::kWidth <= rows.dim; k += S::kWidth) {
#pragma GCC unroll 8
    for (int j = 0; j < R; ++j) {
      const V v = S::load(row[j] + k);
      acc[j] = S::fmadd(v, v, acc[j]);
    }
  }
  if (k < rows.dim) {
#pragma GCC unroll 8
    for (int j = 0; j < R; ++j) {
      const V v = S::load_partial(row[j] + k, rows.dim - k);
      acc[j] = S::fmadd(v, v, acc[j]);
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < R; ++j) out[j] = S::hsum(acc[j]);
}

// out[i - first] = |rows[i]|^2 for rows [first, last), four at a time.
template <class S>
inline void range_sq_norms(Rows rows, std::size_t first, std::size_t last, float* out) {
  std::size_t i = first;
  for (; i + 4 <= last; i += 4) rows_sq_norms<S, 4>(rows, i, out + (i - first));
  for (; i < last; ++i) rows_sq_norms<S, 1>(rows, i, out + (i - first));
}

// A candidate's term of the metric (see Problem) from its squared norm.
template <MetricKind M>
inline float candidate_term(float sq_norm) {
  if constexpr (M == MetricKind::Cosine) {
    return cosine_term(sq_norm);
  } else {
    return sq_norm;
  }
}

// The candidate terms of rows [cb, ce) into terms[0, ce - cb): from the kept squared norms, or
// from the rows themselves. The block is scanned right after this pass, from cache, so computing
// the norms here reads no row from memory twice.
template <class S, MetricKind M>
inline void block_candidate_terms(const Problem& p, std::size_t cb, std::size_t ce, float* terms) {
  if (p.candidate_sq_norms != nullptr) {
    for (std::size_t c = cb; c < ce; ++c)
      terms[c - cb] = candidate_term<M>(p.candidate_sq_norms[c]);
    return;
  }
  range_sq_norms<S>(p.candidates, cb, ce, terms);
  for (std::size_t c = cb; c < ce; ++c) terms[c - cb] = candidate_term<M>(terms[c - cb]);
}

// tile_row for a scan without kept norms: each candidate's |c|^2 accumulates from the same loads
// as its dot products (one more FMA chain, no second pass over the row), and its term is written
// to terms[c - cb] before the tile is finished. Used for short query tiles only (a memory-bound
// scan: the pass of block_candidate_terms would wait on memory itself), which are never chunked.
template <class S, MetricKind M, int QT, class Finish>
inline void tile_row_with_norms(const Problem& p, std::size_t q, std::size_t cb, std::size_t ce,
                                float* terms, Finish&& finish) {
  using V = typename S::V;
  const std::size_t dim = p.queries.dim;
  const auto tile = [&]<int NT>(std::size_t c) {
    V acc[QT * NT];
    V norms[NT];
#pragma GCC unroll 16
    for (int i = 0; i < QT * NT; ++i) acc[i] = S::zero();
#pragma GCC unroll 8
    for (int j = 0; j < NT; ++j) norms[j] = S::zero();
    accumulate_tile<S, QT, NT, true>(p, q, c, 0, dim, acc, norms);
#pragma GCC unroll 8
    for (int j = 0; j < NT; ++j) terms[c - cb + j] = candidate_term<M>(S::hsum(norms[j]));
    finish.template operator()<NT>(c, acc);
  };
  constexpr int NT = kRowTileN<S, QT>;
  std::size_t c = cb;
  for (; c + NT <= ce; c += NT) tile.template operator()<NT>(c);
  for (; c < ce; ++c) tile.template operator()<1>(c);
}

// Calls body(cb, ce, terms, terms_ready) for each cache block of candidates [c0, c1): terms[c - cb]
// is the candidate term of row c (unused for Dot). When terms_ready is false the body computes
// them during its scan (tile_row_with_norms): for a query range of one short tile without kept
// norms.
template <class S, MetricKind M, class Body>
inline void for_each_candidate_block(const Problem& p, std::size_t queries, std::size_t c0,
                                     std::size_t c1, Body&& body) {
  const std::size_t block = candidate_block_rows<S>(queries, p.candidates.dim);
  const bool in_scan =
      M != MetricKind::Dot && p.candidate_sq_norms == nullptr && queries < S::kTileQ;
  float terms[kMaxBlockRows];
  for (std::size_t cb = c0; cb < c1; cb += block) {
    const std::size_t ce = smaller(cb + block, c1);
    if (M != MetricKind::Dot && !in_scan) block_candidate_terms<S, M>(p, cb, ce, terms);
    body(cb, ce, terms, !in_scan);
  }
}

// One query tile against a block: its tiles' accumulators to finish<NT>(c, acc), with the block's
// candidate terms ready by then.
// Only short tiles (QT < kTileQ) of Cosine and L2 ever compute terms in the scan; the other
// instantiations contain tile_row alone, which keeps it inlined into the hot loop.
template <class S, MetricKind M, int QT, class Finish>
inline void block_row(const Problem& p, std::size_t q, std::size_t cb, std::size_t ce, float* terms,
                      bool terms_ready, Finish&& finish) {
  if constexpr (M != MetricKind::Dot && QT < S::kTileQ) {
    if (!terms_ready) {
      tile_row_with_norms<S, M, QT>(p, q, cb, ce, terms, finish);
      return;
    }
  }
  tile_row<S, QT>(p, q, cb, ce, finish);
}

template <class S, MetricKind M>
void topk_block_impl(const Problem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                     std::size_t c1, TopKList* lists) {
  for_each_candidate_block<S, M>(
      p, q1 - q0, c0, c1, [&](std::size_t cb, std::size_t ce, float* terms, bool ready) {
        for_each_query_tile<S>(q0, q1, [&]<int QT>(std::size_t q) {
          TopKList* tile_lists = lists + (q - q0);
          block_row<S, M, QT>(
              p, q, cb, ce, terms, ready, [&]<int NT>(std::size_t c, const typename S::V* acc) {
                topk_finish<S, M, QT, NT>(p, q, c, terms + (c - cb), acc, tile_lists);
              });
        });
      });
}

template <class S, MetricKind M>
void keys_block_impl(const Problem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                     std::size_t c1, float* out, std::size_t ld) {
  for_each_candidate_block<S, M>(
      p, q1 - q0, c0, c1, [&](std::size_t cb, std::size_t ce, float* terms, bool ready) {
        for_each_query_tile<S>(q0, q1, [&]<int QT>(std::size_t q) {
          float* row = out + (q - q0) * ld;
          block_row<S, M, QT>(
              p, q, cb, ce, terms, ready, [&]<int NT>(std::size_t c, const typename S::V* acc) {
                keys_finish<S, M, QT, NT>(p, q, terms + (c - cb), acc, row + (c - c0), ld);
              });
        });
      });
}

template <class S>
void topk_block(const Problem& p, std::size_t q0, std::size_t q1, std::size_t c0, std::size_t c1,
                TopKList* lists) {
  switch (p.metric) {
    case MetricKind::Dot:
      return topk_block_impl<S, MetricKind::Dot>(p, q0, q1, c0, c1, lists);
    case MetricKind::Cosine:
      return topk_block_impl<S, MetricKind::Cosine>(p, q0, q1, c0, c1, lists);
    case MetricKind::L2:
      return topk_block_impl<S, MetricKind::L2>(p, q0, q1, c0, c1, lists);
  }
}

template <class S>
void keys_block(const Problem& p, std::size_t q0, std::size_t q1, std::size_t c0, std::size_t c1,
                float* out, std::size_t ld) {
  switch (p.metric) {
    case MetricKind::Dot:
      return keys_block_impl<S, MetricKind::Dot>(p, q0, q1, c0, c1, out, ld);
    case MetricKind::Cosine:
      return keys_block_impl<S, MetricKind::Cosine>(p, q0, q1, c0, c1, out, ld);
    case MetricKind::L2:
      return keys_block_impl<S, MetricKind::L2>(p, q0, q1, c0, c1, out, ld);
  }
}

template <class S>
void squared_norms(Rows rows, float* out) {
  range_sq_norms<S>(rows, 0, rows.rows, out);
}

// x - x is 0 for a finite x and NaN for a NaN or an infinity, and a NaN survives the sums; four
// sums, so the adds' latency does not bound the scan (a cache put checks every value it stores).
template <class S>
bool all_finite(const float* x, std::size_t n) {
  constexpr std::size_t W = S::kWidth;
  typename S::V sum[4] = {S::zero(), S::zero(), S::zero(), S::zero()};
  std::size_t j = 0;
  for (; j + 4 * W <= n; j += 4 * W) {
    for (std::size_t u = 0; u < 4; ++u) {
      const typename S::V v = S::load(x + j + u * W);
      sum[u] = S::add(sum[u], S::sub(v, v));
    }
  }
  for (; j + W <= n; j += W) {
    const typename S::V v = S::load(x + j);
    sum[0] = S::add(sum[0], S::sub(v, v));
  }
  if (j < n) {
    const typename S::V v = S::load_partial(x + j, n - j);  // the lanes past n load as 0
    sum[0] = S::add(sum[0], S::sub(v, v));
  }
  return S::hsum(S::add(S::add(sum[0], sum[1]), S::add(sum[2], sum[3]))) == 0.0f;
}

template <class S>
constexpr KernelTable make_kernel_table(const char* name) {
  return KernelTable{name, &squared_norms<S>, &all_finite<S>, &keys_block<S>, &topk_block<S>};
}
