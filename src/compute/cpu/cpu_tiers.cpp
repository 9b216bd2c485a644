// src/compute/cpu: the CPU side of similarity -- one kernel file per ISA (kernels_*.cpp over
// tile_driver.inl), run-time ISA detection (isa.cpp), top-k lists (topk_set.cpp) and the Sequential
// and Cpu tiers (this file), which split work across the Resources' arena they are handed. It owns
// no threads, chooses no tier, and includes neither cache nor scheduler code.
#include "compute/cpu/cpu_tiers.hpp"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <vector>

#include "compute/cpu/topk_set.hpp"

namespace hetcache::cpu {
namespace {

// Work per task: candidate ranges of at least this many multiply-adds (about 40 us on one core,
// several times a task hand-off), query ranges of whole tiles.
constexpr std::size_t kMinMultiplyAddsPerTask = std::size_t{1} << 20;
constexpr std::size_t kCandidateAlign = 16;
constexpr std::size_t kQueryAlign = 4;
// Candidate sets up to this size are treated as cache-resident (about the L3 of one socket).
constexpr std::size_t kCacheResidentBytes = std::size_t{32} << 20;
// Per-task top-k lists for a database split are capped at this many bytes in total.
constexpr std::size_t kTopKScratchBytes = std::size_t{256} << 20;

// How many slices of the candidates are worth a task each (at least one).
std::size_t candidate_parts(std::size_t threads, std::size_t nq, std::size_t nc, std::size_t dim) {
  const std::size_t work_per_row = std::max<std::size_t>(1, nq * dim);
  const std::size_t min_rows = std::max<std::size_t>(
      kCandidateAlign, (kMinMultiplyAddsPerTask + work_per_row - 1) / work_per_row);
  return std::max<std::size_t>(1, std::min(threads, nc / min_rows));
}

// [begin, end) of part `i` when `n` items are cut into `parts` pieces aligned to `align`.
struct Range {
  std::size_t begin, end;
};
Range part_range(std::size_t n, std::size_t parts, std::size_t i, std::size_t align) {
  const std::size_t units = (n + align - 1) / align;
  const std::size_t b = units * i / parts * align;
  const std::size_t e = units * (i + 1) / parts * align;
  return {std::min(b, n), std::min(e, n)};
}

// Calls fn(i) for i in [0, parts) on the arena (parallel) or in order on this thread.
template <class Fn>
void run_parts(tbb::task_arena* arena, std::size_t parts, const Fn& fn) {
  if (arena == nullptr || parts <= 1) {
    for (std::size_t i = 0; i < parts; ++i) fn(i);
    return;
  }
  arena->execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, parts, 1),
        [&](const tbb::blocked_range<std::size_t>& r) {
          for (std::size_t i = r.begin(); i != r.end(); ++i) fn(i);
        },
        tbb::simple_partitioner());
  });
}

}  // namespace

MetricKind kind_of(Metric metric) {
  switch (metric) {
    case Metric::Dot:
      return MetricKind::Dot;
    case Metric::Cosine:
      return MetricKind::Cosine;
    case Metric::L2:
      return MetricKind::L2;
  }
  return MetricKind::Dot;
}

CpuTiers::CpuTiers(const KernelTable& kernels, tbb::task_arena& arena, std::size_t threads)
    : kernels_(kernels), arena_(arena), threads_(std::max<std::size_t>(1, threads)) {}

Hits CpuTiers::search(MatrixView queries, MatrixView candidates,
                      const float* candidate_sq_norms, std::size_t k, Metric metric,
                      bool parallel) const {
  const std::size_t nq = queries.rows(), nc = candidates.rows();
  const MetricKind kind = kind_of(metric);
  tbb::task_arena* arena = parallel ? &arena_ : nullptr;
  const std::vector<float> qterms = query_terms(queries, kind, parallel);
  const Problem problem{rows_of(queries), rows_of(candidates), kind, qterms.data(),
                        candidate_sq_norms};
  Hits hits(nq, k);

  // Query split: every thread owns a slice of queries and scans all candidates; no merge, and
  // each list sees every candidate, so its threshold tightens as fast as on one thread. Each
  // thread reads the candidates once, which is cheap when they sit in cache or when Q >= 64
  // makes the scan compute-bound.
  const bool cache_resident = nc * queries.dim() * sizeof(float) <= kCacheResidentBytes;
  if (parallel && nq >= 2 * kQueryAlign * threads_ && (nq >= 64 || cache_resident)) {
    run_parts(arena, threads_, [&](std::size_t i) {
      const Range r = part_range(nq, threads_, i, kQueryAlign);
      if (r.begin == r.end) return;
      TopKSet set(r.end - r.begin, k);
      kernels_.topk_block(problem, r.begin, r.end, 0, nc, set.lists());
      set.write_hits(hits, r.begin, kind);
    });
    return hits;
  }

  // Database split: one slice of candidates per thread for all queries, then the per-thread
  // lists merge in slice order (ids ascending, as topk_select requires). One slice per thread,
  // not more: every slice pays a warm-up of its own threshold. Capped by scratch memory.
  std::size_t parts = 1;
  if (parallel) {
    const std::size_t by_memory =
        std::max<std::size_t>(1, kTopKScratchBytes / TopKSet::bytes_for(nq, k));
    parts = std::min(candidate_parts(threads_, nq, nc, queries.dim()), by_memory);
  }
  std::vector<TopKSet> sets;
  sets.reserve(parts);
  for (std::size_t i = 0; i < parts; ++i) sets.emplace_back(nq, k);
  run_parts(arena, parts, [&](std::size_t i) {
    const Range r = part_range(nc, parts, i, kCandidateAlign);
    if (r.begin < r.end) kernels_.topk_block(problem, 0, nq, r.begin, r.end, sets[i].lists());
  });
  for (std::size_t i = 1; i < parts; ++i) sets[0].merge(sets[i]);
  sets[0].write_hits(hits, 0, kind);
  return hits;
}

void CpuTiers::scores(MatrixView queries, MatrixView candidates, const float* candidate_sq_norms,
                      Metric metric, bool parallel, float* out, std::size_t ld) const {
  const std::size_t nq = queries.rows(), nc = candidates.rows();
  if (nq == 0 || nc == 0) return;
  const MetricKind kind = kind_of(metric);
  tbb::task_arena* arena = parallel ? &arena_ : nullptr;
  const std::vector<float> qterms = query_terms(queries, kind, parallel);
  const Problem problem{rows_of(queries), rows_of(candidates), kind, qterms.data(),
                        candidate_sq_norms};

  const bool split_queries = nq >= threads_ * 2 * kQueryAlign;
  const std::size_t parts = !parallel       ? 1
                            : split_queries ? threads_
                                            : candidate_parts(threads_, nq, nc, queries.dim());
  run_parts(arena, parts, [&](std::size_t i) {
    Range qr{0, nq}, cr{0, nc};
    (split_queries ? qr : cr) = part_range(split_queries ? nq : nc, parts, i,
                                           split_queries ? kQueryAlign : kCandidateAlign);
    if (qr.begin == qr.end || cr.begin == cr.end) return;
    float* block = out + qr.begin * ld + cr.begin;
    kernels_.keys_block(problem, qr.begin, qr.end, cr.begin, cr.end, block, ld);
    if (kind == MetricKind::L2) {  // keys are -distance
      for (std::size_t q = qr.begin; q < qr.end; ++q) {
        float* row = out + q * ld;
        for (std::size_t c = cr.begin; c < cr.end; ++c) row[c] = -row[c];
      }
    }
  });
}

std::vector<float> CpuTiers::query_terms(MatrixView queries, MetricKind metric,
                                         bool parallel) const {
  std::vector<float> terms(queries.rows());
  if (metric == MetricKind::Dot) return terms;
  squared_norms(queries, parallel, terms.data());
  if (metric == MetricKind::Cosine) {
    for (float& t : terms) t = cosine_term(t);
  }
  return terms;
}

void CpuTiers::squared_norms(MatrixView rows, bool parallel, float* out) const {
  if (rows.rows() == 0) return;
  const std::size_t parts =
      parallel ? std::min(threads_ * 4, std::max<std::size_t>(1, rows.rows() / 4096)) : 1;
  run_parts(parallel ? &arena_ : nullptr, parts, [&](std::size_t i) {
    const Range r = part_range(rows.rows(), parts, i, 1);
    kernels_.squared_norms(rows_of(rows.slice(r.begin, r.end - r.begin)), out + r.begin);
  });
}

}  // namespace hetcache::cpu
