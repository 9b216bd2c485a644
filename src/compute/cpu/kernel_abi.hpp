// Private to src/: the interface between the dispatching code and the per-ISA kernels.
//
// Each ISA translation unit (kernels_*.cpp: the f32 kernels of each ISA and the compact-set
// kernels of compact_abi.hpp) is compiled with its own -m flags. If such a unit instantiated an
// inline function or template that baseline code also uses (std::min, a class's inline member,
// ...), the linker could keep the AVX-512 copy for everyone and the library would crash on older
// CPUs. So this header and compact_abi.hpp hold only plain structs and `static inline` helpers
// (internal linkage), and the kernel units include nothing but them, <immintrin.h> and the
// .inl drivers and vector policies (simd_*.inl), inside an anonymous namespace.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hetcache::cpu {

// A row-major float matrix as the kernels see it (stride in floats).
struct Rows {
  const float* data;
  std::size_t rows;
  std::size_t dim;
  std::size_t stride;
};

enum class MetricKind : int { Dot = 0, Cosine = 1, L2 = 2 };

// Everything a kernel needs to turn a dot product into a ranking key.
// Keys are "larger is better" on every metric:
//   Dot    key = q.c
//   Cosine key = (q.c * query_term[q]) * candidate_term[c]   with terms = 1/|x| (0 for |x| = 0)
//   L2     key = -max(0, (query_term[q] + candidate_term[c]) - 2 q.c)   with terms = |x|^2
// and the reported score is the key itself (Dot, Cosine) or -key (L2, the squared distance).
// The kernels derive the candidate terms from candidate_sq_norms, a block of rows at a time (see
// tile_driver.inl); without stored norms they compute each row's |c|^2 as the block is scanned.
struct Problem {
  Rows queries;
  Rows candidates;
  MetricKind metric;
  const float* query_term;          // per query; unused for Dot
  const float* candidate_sq_norms;  // |c|^2 per candidate, or null: computed in the scan
};

// The Cosine term of a row from its squared norm: 1/|x|, and 0 for a zero vector (which then scores
// 0 against everything). One definition for the queries' terms (cpu_tiers.cpp) and the candidates'
// (tile_driver.inl), so both follow the same rule with the same bits.
static inline float cosine_term(float sq_norm) {
  return sq_norm > 0.0f ? 1.0f / __builtin_sqrtf(sq_norm) : 0.0f;
}

struct TopKEntry {
  float key;
  std::int64_t id;
};

// One query's top-k as a reservoir: survivors are appended to `entries`; when the buffer is full,
// topk_select keeps the best k and raises `threshold` to the k-th key. Appending is one store, so
// a survivor costs O(1) amortised instead of a heap's O(log k) unpredictable branches.
// Once a selection has run (!open), a candidate can only matter if key >= threshold (ordered
// compare, so NaN never passes): kernels reject everything else with one vector compare.
struct TopKList {
  TopKEntry* entries;
  std::size_t size;
  std::size_t capacity;  // > k
  std::size_t k;         // >= 1
  float threshold;       // valid when !open
  bool open;             // no selection yet: every candidate is kept
};

// Total order on (key, id): is a strictly worse than b? NaN keys are worse than every number and
// ordered among themselves by id; equal keys are ordered by id (lower id is better).
static inline bool entry_worse(float ka, std::int64_t ia, float kb, std::int64_t ib) {
  const bool na = ka != ka;
  const bool nb = kb != kb;
  if (na || nb) return (na && nb) ? ia > ib : na;
  if (ka != kb) return ka < kb;
  return ia > ib;
}

// Keeps the best k entries and sets the threshold (defined in topk_set.cpp, baseline code).
// Rejecting what fails the threshold is exact as long as each list sees candidate ids in
// increasing order, which every scan and merge guarantees: a NaN k-th entry gives threshold
// -inf, and a later NaN (higher id) is then rightly worse.
void topk_select(TopKList& list);

static inline void topk_offer(TopKList& list, float key, std::int64_t id) {
  list.entries[list.size].key = key;
  list.entries[list.size].id = id;
  if (++list.size == list.capacity) topk_select(list);
}

// The kernels of one ISA. All ranges are half-open; ids are global candidate row numbers.
struct KernelTable {
  const char* name;
  // out[i] = rows[i] . rows[i], summed exactly as the dot products are (so |x|^2 terms match).
  void (*squared_norms)(Rows rows, float* out);
  // Whether x[0..n) holds no NaN and no infinity.
  bool (*all_finite)(const float* x, std::size_t n);
  // Ranking keys (see Problem) for queries [q0,q1) x candidates [c0,c1); out[(q-q0)*ld + (c-c0)].
  void (*keys_block)(const Problem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                     std::size_t c1, float* out, std::size_t ld);
  // Fused top-k: offers queries [q0,q1) x candidates [c0,c1) to lists[q - q0].
  void (*topk_block)(const Problem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                     std::size_t c1, TopKList* lists);
};

extern const KernelTable kScalarKernels;
#if defined(HETCACHE_X86_KERNELS)
extern const KernelTable kAvx2Kernels;
extern const KernelTable kAvx512Kernels;
#endif

}  // namespace hetcache::cpu
