// Searching a CompactSet: the compact kernels keep, per query, every candidate whose bound
// reaches the k-th best lower bound (compact_abi.hpp); exact mode re-scores those from the f32
// rows with the engine's f32 kernels, so a hit's score has the f32 search's bits, and fast mode
// ranks them by their low-precision keys. Queries whose bounds cannot be trusted (NaN, infinity,
// |q| over 2^60 or under 2^-60) are searched over the f32 rows directly.
#include <hetcache/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include "compute/cpu/compact_rows.hpp"
#include "compute/cpu/cpu_tiers.hpp"
#include "compute/cpu/topk_set.hpp"

namespace hetcache::cpu {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

std::size_t initial_capacity(std::size_t k) { return 2 * k + 64; }

// One query's survivors from one scan, with the storage survivor_select grows.
struct SurvivorStore {
  std::vector<Survivor> entries;
  SurvivorList list;

  explicit SurvivorStore(std::size_t k) : entries(initial_capacity(k)) {
    list = SurvivorList{entries.data(), 0, entries.size(), k, kMinusInf, &entries};
  }
  SurvivorStore(SurvivorStore&& other) noexcept
      : entries(std::move(other.entries)), list(other.list) {
    list.entries = entries.data();
    list.owner = &entries;
  }
  SurvivorStore(const SurvivorStore&) = delete;
};

}  // namespace

// The per-query numbers of the slack (see compact_set.cpp) and whether they can be trusted; all
// but Cosine's t_q are the same for every set (adds_for gives t_q).
struct QueryTerms {
  MetricKind metric;
  std::vector<float> term;  // the metric's query term, as the f32 path computes it
  std::vector<float> scale, round;
  std::vector<float> add;            // t_q for Dot and L2
  std::vector<double> cos_add_base;  // Cosine: t_q = cos_add_base * the set's max_cos_term
  std::vector<unsigned char> trusted;
  // The queries as the kernel reads them (QueryCoding Bf16: uint16 elements; U8: bytes), rows of
  // codes_stride elements, and U8's per-query scale.
  std::vector<unsigned char> codes;
  std::size_t codes_stride = 0;
  std::vector<float> code_scale;
};

namespace {

// Query row `row` coded for the kernel into `out`; returns |q - q'|^2 (q' the coded query, as
// the kernel multiplies it). U8: scale = max|q| / 127 as the rows' I8 rule, code + 128.
double code_query(const float* row, std::size_t dim, QueryCoding coding, unsigned char* out,
                  float* scale) {
  double r2 = 0.0;
  if (coding == QueryCoding::Bf16) {
    encode_row_reference<ElementKind::Bf16>(row, dim, out, nullptr);
    const auto* h = reinterpret_cast<const std::uint16_t*>(out);
    for (std::size_t i = 0; i < dim; ++i) {
      const double d = static_cast<double>(row[i]) - float_from_bf16(h[i]);
      r2 += d * d;
    }
    return r2;
  }
  // The rows' I8 rule (a NaN scale for a row with NaN or infinity), then + 128 in place.
  encode_row_reference<ElementKind::I8>(row, dim, out, scale);
  for (std::size_t i = 0; i < dim; ++i) {
    const int code = static_cast<signed char>(out[i]);
    out[i] = static_cast<unsigned char>(code + 128);
    const double d = static_cast<double>(row[i]) - static_cast<double>(*scale) * code;
    r2 += d * d;
  }
  return r2;
}

QueryTerms query_terms(const KernelTable& f32_kernels, QueryCoding coding, MatrixView queries,
                       MetricKind metric) {
  const std::size_t nq = queries.rows(), dim = queries.dim();
  QueryTerms t;
  t.metric = metric;
  std::vector<float> sq(nq);
  f32_kernels.squared_norms(rows_of(queries), sq.data());
  t.term.resize(nq);
  for (std::size_t q = 0; q < nq; ++q) {
    t.term[q] = metric == MetricKind::Cosine ? cosine_term(sq[q])
                : metric == MetricKind::L2   ? sq[q]
                                             : 0.0f;
  }
  t.scale.resize(nq);
  t.round.resize(nq);
  t.add.resize(nq);
  if (metric == MetricKind::Cosine) t.cos_add_base.resize(nq);
  t.trusted.resize(nq);
  const std::size_t code_bytes = coding == QueryCoding::Bf16 ? 2 : 1;
  if (coding != QueryCoding::F32) {
    t.codes_stride = (dim + 63) / 64 * 64;
    t.codes.assign(nq * t.codes_stride * code_bytes, 0);
    t.code_scale.assign(nq, 0.0f);
  }
  // Underflow in any product or sum, and vdpbf16ps flushing results under 2^-126 to zero.
  const double absolute = static_cast<double>(dim) * 0x1p-124;
  for (std::size_t q = 0; q < nq; ++q) {
    const float* row = queries.row(q);
    double q2 = 0.0;
    for (std::size_t i = 0; i < dim; ++i) q2 += static_cast<double>(row[i]) * row[i];
    const double r2 =
        coding == QueryCoding::F32
            ? 0.0
            : code_query(row, dim, coding, t.codes.data() + q * t.codes_stride * code_bytes,
                         &t.code_scale[q]);
    const double norm = std::sqrt(q2), round = std::sqrt(r2);
    t.trusted[q] = std::isfinite(q2) && std::isfinite(r2) && norm <= 0x1p60 &&
                   (norm == 0.0 || norm >= 0x1p-60);
    const double qt = t.term[q];
    switch (metric) {
      case MetricKind::Dot:
        t.scale[q] = rounded_up(norm);
        t.round[q] = rounded_up(round);
        t.add[q] = rounded_up(absolute);
        break;
      case MetricKind::Cosine:
        t.scale[q] = rounded_up(norm * qt);
        t.round[q] = rounded_up(round * qt);
        t.cos_add_base[q] = absolute * qt;
        break;
      case MetricKind::L2:
        t.scale[q] = rounded_up(norm);
        t.round[q] = rounded_up(round);
        t.add[q] = rounded_up(2 * absolute + 4 * kUnit * sq[q]);
        break;
    }
  }
  return t;
}

// t_q of every query for one set.
std::vector<float> adds_for(const QueryTerms& t, const detail::CompactRows& set) {
  if (t.metric != MetricKind::Cosine) return t.add;
  std::vector<float> add(t.cos_add_base.size());
  for (std::size_t q = 0; q < add.size(); ++q)
    add[q] = rounded_up(t.cos_add_base[q] * set.max_cos_term);
  return add;
}

// The context's prepared terms, or `own` computed here.
const QueryTerms& terms_of(const CompactSearchContext& c, MatrixView queries, MetricKind metric,
                           QueryTerms& own) {
  if (c.prepared == nullptr) {
    own = query_terms(c.f32_kernels, c.compact_kernels.query_coding, queries, metric);
    return own;
  }
  if (c.prepared->metric != metric || c.prepared->term.size() != queries.rows()) {
    throw Error(ErrorCode::Internal, "compact search: the prepared queries are another search's");
  }
  return *c.prepared;
}

bool survivor_better(const Survivor& a, const Survivor& b) {
  return entry_worse(b.key, b.id, a.key, a.id);
}

// The f32 top-k of query q into hits row q: over the candidates `ids` (ascending), gathered from
// the f32 rows, or over every f32 row when ids is null.
void rescore(const CompactSearchContext& c, MatrixView queries, std::size_t q, float query_term,
             MetricKind metric, const std::vector<std::int64_t>* ids, std::size_t k, Hits& hits) {
  const MatrixView f32 = c.f32_rows.rows();
  Matrix gathered;
  std::vector<float> norms;
  Problem problem{rows_of(queries.slice(q, 1)), rows_of(f32), metric, &query_term,
                  c.set.sq_norms.data()};
  if (ids != nullptr) {
    gathered = Matrix(ids->size(), f32.dim());
    norms.resize(ids->size());
    for (std::size_t i = 0; i < ids->size(); ++i) {
      const auto id = static_cast<std::size_t>((*ids)[i]);
      std::copy_n(f32.row(id), f32.dim(), gathered.row(i));
      norms[i] = c.set.sq_norms[id];
    }
    problem.candidates = rows_of(gathered.view());
    problem.candidate_sq_norms = norms.data();
  }
  const std::size_t n = problem.candidates.rows;
  const std::size_t kept = std::min(k, n);
  TopKSet set(1, kept);
  c.f32_kernels.topk_block(problem, 0, 1, 0, n, set.lists());
  set.write_hits(hits, q, metric);
  if (ids == nullptr) return;  // every row: local ids are the ids
  for (std::int64_t& id : hits.mutable_ids(q).first(kept))
    id = (*ids)[static_cast<std::size_t>(id)];
}

}  // namespace

void survivor_select(SurvivorList& list) {
  if (list.size >= list.k) {
    thread_local std::vector<float> lowers;
    lowers.resize(list.size);
    for (std::size_t i = 0; i < list.size; ++i) {
      const float low = list.entries[i].key - list.entries[i].slack;
      lowers[i] = low == low ? low : kMinusInf;
    }
    std::nth_element(lowers.begin(), lowers.begin() + static_cast<std::ptrdiff_t>(list.k - 1),
                     lowers.end(), std::greater<float>());
    list.floor = std::max(list.floor, lowers[list.k - 1]);
  }
  std::size_t kept = 0;
  for (std::size_t i = 0; i < list.size; ++i) {
    const Survivor& e = list.entries[i];
    if (!(e.key + e.slack < list.floor)) list.entries[kept++] = e;
  }
  list.size = kept;
  if (list.size * 2 > list.capacity) {  // mostly survivors: room for as many again
    auto& storage = *static_cast<std::vector<Survivor>*>(list.owner);
    storage.resize(list.capacity * 2);
    list.entries = storage.data();
    list.capacity = storage.size();
  }
}

namespace {

// The scan: per query, the candidates that survive the bound's selection for a top-k (compact_abi
// .hpp), in no particular order. With exact set, queries whose bounds are untrusted get none (the
// caller searches the f32 rows for them).
std::vector<std::vector<Survivor>> select_survivors(const CompactSearchContext& c,
                                                    MatrixView queries, std::size_t k,
                                                    MetricKind kind, const QueryTerms& t,
                                                    const std::vector<float>& add, bool exact) {
  const std::size_t nq = queries.rows(), nc = c.rows;
  const detail::RowSlack& slack = kind == MetricKind::Dot      ? c.set.dot
                                  : kind == MetricKind::Cosine ? c.set.cosine
                                                               : c.set.l2;
  const float* candidate_term = kind == MetricKind::Cosine ? c.set.cos_terms.data()
                                : kind == MetricKind::L2   ? c.set.sq_norms.data()
                                                           : nullptr;
  const CompactProblem problem{rows_of(queries),
                               t.codes.empty() ? nullptr : t.codes.data(),
                               t.codes_stride,
                               t.code_scale.empty() ? nullptr : t.code_scale.data(),
                               c.set.kernel_rows(),
                               kind,
                               t.term.data(),
                               candidate_term,
                               exact,
                               SlackRows{slack.beta.data(), slack.norm.data(),
                                         slack.add.empty() ? nullptr : slack.add.data()},
                               t.scale.data(),
                               t.round.data(),
                               add.data()};

  // Survivors per scan part: the queries split across threads when there are enough of them,
  // else the candidates (each part then keeps lists for every query).
  const bool split_queries = c.arena == nullptr || nq >= 8 * c.threads;
  const std::size_t parts = c.arena == nullptr ? 1
                            : split_queries
                                ? std::min(c.threads, nq)
                                : std::max<std::size_t>(1, std::min(c.threads, nc / 4096));
  struct Part {
    std::size_t q0, q1, c0, c1;
    std::vector<SurvivorStore> stores;  // queries [q0, q1)
  };
  std::vector<Part> scan(parts);
  for (std::size_t i = 0; i < parts; ++i) {
    Part& part = scan[i];
    part.q0 = split_queries ? nq * i / parts : 0;
    part.q1 = split_queries ? nq * (i + 1) / parts : nq;
    part.c0 = split_queries ? 0 : nc * i / parts;
    part.c1 = split_queries ? nc : nc * (i + 1) / parts;
    part.stores.reserve(part.q1 - part.q0);
    for (std::size_t q = part.q0; q < part.q1; ++q) part.stores.emplace_back(k);
  }
  for_ranges(c.arena, parts, parts, 1, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      Part& part = scan[i];
      std::vector<SurvivorList> lists;
      for (SurvivorStore& store : part.stores) lists.push_back(store.list);
      if (part.q0 < part.q1 && part.c0 < part.c1) {
        c.compact_kernels.offer_block(problem, part.q0, part.q1, part.c0, part.c1, lists.data());
      }
      for (std::size_t j = 0; j < lists.size(); ++j) part.stores[j].list = lists[j];
    }
  });

  std::vector<std::vector<Survivor>> out(nq);
  for_ranges(c.arena, c.threads, nq, 1, [&](std::size_t begin, std::size_t end) {
    for (std::size_t q = begin; q < end; ++q) {
      if (exact && !t.trusted[q]) continue;
      // All parts' survivors of this query, in id order (parts are in candidate order), then
      // one more selection under the highest floor.
      std::vector<Survivor>& merged = out[q];
      float floor = kMinusInf;
      for (const Part& part : scan) {
        if (q < part.q0 || q >= part.q1) continue;
        const SurvivorList& l = part.stores[q - part.q0].list;
        merged.insert(merged.end(), l.entries, l.entries + l.size);
        floor = std::max(floor, l.floor);
      }
      merged.push_back(Survivor{});  // room: a list is never full
      SurvivorList all{merged.data(), merged.size() - 1, merged.size(), k, floor, &merged};
      survivor_select(all);
      merged.resize(all.size);
    }
  });
  return out;
}

}  // namespace

Hits compact_search(const CompactSearchContext& c, MatrixView queries, std::size_t k, Metric metric,
                    ScoreMode mode) {
  const std::size_t nq = queries.rows(), nc = c.rows;
  const MetricKind kind = kind_of(metric);
  const bool exact = mode == ScoreMode::Exact;
  QueryTerms own;
  const QueryTerms& t = terms_of(c, queries, kind, own);
  std::vector<std::vector<Survivor>> survivors =
      select_survivors(c, queries, k, kind, t, adds_for(t, c.set), exact);
  Hits hits(nq, std::min(k, nc));
  for_ranges(c.arena, c.threads, nq, 1, [&](std::size_t begin, std::size_t end) {
    for (std::size_t q = begin; q < end; ++q) {
      if (exact && !t.trusted[q]) {
        rescore(c, queries, q, t.term[q], kind, nullptr, k, hits);
        continue;
      }
      std::vector<Survivor>& all = survivors[q];
      if (!exact) {
        std::sort(all.begin(), all.end(), survivor_better);
        auto scores = hits.mutable_scores(q);
        auto ids = hits.mutable_ids(q);
        for (std::size_t i = 0; i < scores.size(); ++i) {
          scores[i] = kind == MetricKind::L2 ? -all[i].key : all[i].key;
          ids[i] = all[i].id;
        }
        continue;
      }
      std::vector<std::int64_t> ids(all.size());
      for (std::size_t i = 0; i < all.size(); ++i) ids[i] = all[i].id;
      std::sort(ids.begin(), ids.end());
      rescore(c, queries, q, t.term[q], kind, &ids, k, hits);
    }
  });
  return hits;
}

std::shared_ptr<const QueryTerms> prepare_compact_queries(const KernelTable& f32_kernels,
                                                          const CompactKernelTable& compact_kernels,
                                                          MatrixView queries, Metric metric) {
  return std::make_shared<const QueryTerms>(
      query_terms(f32_kernels, compact_kernels.query_coding, queries, kind_of(metric)));
}

std::vector<std::vector<Survivor>> compact_survivors(const CompactSearchContext& c,
                                                     MatrixView queries, std::size_t k,
                                                     Metric metric) {
  const MetricKind kind = kind_of(metric);
  QueryTerms own;
  const QueryTerms& t = terms_of(c, queries, kind, own);
  std::vector<std::vector<Survivor>> survivors =
      select_survivors(c, queries, k, kind, t, adds_for(t, c.set), true);
  constexpr float nan = std::numeric_limits<float>::quiet_NaN();
  constexpr float inf = std::numeric_limits<float>::infinity();
  for (std::size_t q = 0; q < queries.rows(); ++q) {
    if (t.trusted[q]) continue;
    survivors[q].resize(c.rows);
    for (std::size_t r = 0; r < c.rows; ++r) {
      survivors[q][r] = Survivor{nan, inf, static_cast<std::int64_t>(r)};
    }
  }
  return survivors;
}

}  // namespace hetcache::cpu
