// Private to src/: what a CompactSet holds, how it is made (compact_set.cpp) and searched
// (compact_search.cpp).
#pragma once

#include <hetcache/compact.hpp>
#include <hetcache/matrix.hpp>
#include <hetcache/similarity.hpp>
#include <hetcache/types.hpp>

#include <oneapi/tbb/task_arena.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "compute/cpu/compact_abi.hpp"

namespace hetcache {
namespace detail {

// The slack terms of one metric per row (see SlackRows in compact_abi.hpp).
struct RowSlack {
  std::vector<float> beta, norm, add;  // add empty for Dot
};

struct CompactRows {
  StorageType type = StorageType::F32;
  std::size_t rows = 0;
  std::size_t dim = 0;
  std::size_t stride = 0;  // elements per stored row (each row starts on 64 bytes)
  std::shared_ptr<unsigned char[]> codes;
  std::vector<float> scales;            // I8: per row
  std::vector<std::int32_t> code_sums;  // I8: the sum of each row's codes (for vpdpbusd)
  std::vector<float> sq_norms;          // |c|^2 of the f32 rows, as the engine's ISA sums it
  std::vector<float> cos_terms;         // 1/|c| (cosine_term of sq_norms)
  RowSlack dot, cosine, l2;
  float max_cos_term = 0.0f;  // over the rows whose bounds are finite
  double max_relative_error = 0.0;
  Matrix f32_rows;  // the f32 rows when kept (always for F32); else empty
  bool has_f32 = false;

  cpu::CompactRows kernel_rows() const {
    return cpu::CompactRows{codes.get(),
                            rows,
                            dim,
                            stride,
                            element_kind(),
                            scales.empty() ? nullptr : scales.data(),
                            code_sums.empty() ? nullptr : code_sums.data()};
  }
  cpu::ElementKind element_kind() const;
  std::size_t compact_bytes() const;
  // Elements per stored row of `dim` (each row on 64 bytes), and the bytes a row of a compact
  // type takes with its per-row data (norms, bounds; I8: scale and code sum).
  static std::size_t row_stride(StorageType type, std::size_t dim);
  static std::size_t row_bytes(StorageType type, std::size_t dim);
};

}  // namespace detail

namespace cpu {

// f32's unit roundoff, and a bound term rounded up to f32 with room for the float arithmetic the
// kernels do on it (x (1 + 2^-20) covers a few roundings of 2^-24 each).
inline constexpr double kUnit = 0x1p-24;
inline float rounded_up(double x) { return static_cast<float>(x * (1.0 + 0x1p-20)); }

// The storage type's kernel element kind (F32 has none: never asked).
inline ElementKind element_kind(StorageType type) {
  return type == StorageType::F16    ? ElementKind::F16
         : type == StorageType::Bf16 ? ElementKind::Bf16
                                     : ElementKind::I8;
}

// The bound on the f32 kernels' rounding over a dot product of `dim` terms, relative to |q||c|:
// (dim + 16) * 2^-23, twice the classical dim * u bound, covering the bf16 pair sums and the key
// arithmetic of each metric.
double dot_rounding_bound(std::size_t dim);

// Element i of stored row `row`, decoded exactly (I8: scale * code in double).
double stored_value(const detail::CompactRows& set, std::size_t row, std::size_t i);

// Runs fn(begin, end) over [0, n) in up to `parts` ranges of at least min_items on the arena
// (null: one range on this thread).
void for_ranges(tbb::task_arena* arena, std::size_t parts, std::size_t n, std::size_t min_items,
                const std::function<void(std::size_t, std::size_t)>& fn);

// Encodes `rows` and derives every row's bounds; sq_norms are the rows' squared norms as the
// engine computes them. `kept` is empty or a copy of the rows to keep (F32 must keep one).
std::shared_ptr<const detail::CompactRows> make_compact_rows(
    const CompactKernelTable& kernels, tbb::task_arena* arena, std::size_t threads, MatrixView rows,
    Matrix kept, std::vector<float> sq_norms, StorageType type);

// A store's compact rows, written one row at a time (the memory store's slabs): a set of `rows`
// rows, every one dead until written.
std::unique_ptr<detail::CompactRows> make_dead_compact_rows(StorageType type, std::size_t rows,
                                                            std::size_t dim);
// Row r := `row` encoded, with its bounds; sq_norm is its squared norm as the engine computes it.
// The set's max_cos_term and max_relative_error only grow.
void write_compact_row(const CompactKernelTable& kernels, detail::CompactRows& set, std::size_t r,
                       const float* row, float sq_norm);
// Row r scores NaN with every query and metric (F16 / Bf16: a NaN first element; I8: a NaN
// scale), so it ranks after every other row.
void mark_compact_row_dead(detail::CompactRows& set, std::size_t r);
// Row r as stored, decoded to f32 (I8: scale * code, rounded once).
void decode_compact_row(const detail::CompactRows& set, std::size_t r, float* out);

// The queries' terms of a compact search (norms, bounds, the queries coded for the kernel),
// computed once for a search over many sets with the same kernels (the memory store's slabs).
struct QueryTerms;
std::shared_ptr<const QueryTerms> prepare_compact_queries(const KernelTable& f32_kernels,
                                                          const CompactKernelTable& compact_kernels,
                                                          MatrixView queries, Metric metric);

// What a compact search runs with (all handed in by the engine).
struct CompactSearchContext {
  const detail::CompactRows& set;
  const KernelTable& f32_kernels;  // the engine's: query norms and exact mode's re-scoring
  const CompactKernelTable& compact_kernels;
  tbb::task_arena* arena;  // null: on the calling thread
  std::size_t threads;
  CandidateView f32_rows;  // exact mode's re-scoring source (same rows as the set)
  std::size_t rows;        // the set's first `rows` rows are searched (at most set.rows)
  // The queries' terms from prepare_compact_queries for these kernels, queries and metric; null
  // (the default): computed by the search.
  const QueryTerms* prepared = nullptr;
};

// Top-k over the compact rows (the set is not F32; validated inputs, 1 <= k <= rows).
Hits compact_search(const CompactSearchContext& context, MatrixView queries, std::size_t k,
                    Metric metric, ScoreMode mode);

// Exact mode's first stage alone, for a caller that re-scores from f32 values it reads itself:
// per query, every row that may be in the f32 top-k, with its compact key (L2: the negated
// distance) and slack, in no particular order. A query whose bounds cannot be trusted gets every
// row (key NaN, slack infinite). Validated inputs, 1 <= k.
std::vector<std::vector<Survivor>> compact_survivors(const CompactSearchContext& context,
                                                     MatrixView queries, std::size_t k,
                                                     Metric metric);

// The compact kernels for rows of `kind` on `isa`: with quantize_queries, the AVX512-BF16 dot
// product for Bf16 and the AVX512-VNNI one for I8 on avx512 (with amx, the AMX kernels instead
// where cpu_has_amx_*), the AVX-VNNI one for I8 on avx2, where the CPU has them; else the ISA's
// widening kernels.
const CompactKernelTable& compact_kernels_for(Isa isa, ElementKind kind, bool quantize_queries,
                                              bool amx);
bool cpu_has_avx512_bf16() noexcept;
// AMX-BF16 / AMX-INT8 usable by this process: the CPU has them, the OS saves the tile state and
// the kernel granted the tile data (asked on the first call).
bool cpu_has_amx_bf16() noexcept;
bool cpu_has_amx_int8() noexcept;
// HETCACHE_AMX=1 (SimilarityOptions::amx_kernels' default); unset or 0: false. Any other value
// throws InvalidArgument naming it.
bool amx_requested();
bool cpu_has_avx512_vnni() noexcept;
bool cpu_has_avx_vnni() noexcept;

}  // namespace cpu
}  // namespace hetcache
