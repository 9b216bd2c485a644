// Private to src/: the interface between the dispatching code and the per-ISA kernels.
//
// Each ISA translation unit (kernels_scalar.cpp, kernels_avx2.cpp, kernels_avx512.cpp) is compiled
// with its own -m flags. If such a unit instantiated an inline function or template that baseline
// code also uses (std::min, a class's inline member, ...), the linker could keep the AVX-512 copy
// for everyone and the library would crash on older CPUs. So this header holds only plain structs
// and `static inline` helpers (internal linkage), and the kernel units include nothing but it and
// <immintrin.h>.
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
struct Problem {
  Rows queries;
  Rows candidates;
  MetricKind metric;
  const float* query_term;      // per query; unused for Dot
  const float* candidate_term;  // per candidate; unused for Dot
};

// One query's bounded top-k: a binary heap whose root is the worst kept entry.
// `threshold` lets kernels reject most candidates with one vector compare: once the heap is full
// a candidate can only enter if key >= threshold (ordered compare, so NaN never passes).
struct TopKList {
  float* keys;
  std::int64_t* ids;
  std::size_t size;
  std::size_t capacity;  // >= 1
  float threshold;       // valid when !open
  bool open;             // size < capacity: every candidate is offered
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

static inline void topk_refresh_threshold(TopKList& list) {
  list.open = list.size < list.capacity;
  if (!list.open) {
    const float root = list.keys[0];
    // A NaN root is beaten by any number, including -inf.
    list.threshold = (root != root) ? -__builtin_inff() : root;
  }
}

// Offers one candidate; keeps it when the list is open or when it beats the current worst.
static inline void topk_offer(TopKList& list, float key, std::int64_t id) {
  float* keys = list.keys;
  std::int64_t* ids = list.ids;
  if (list.size < list.capacity) {
    std::size_t i = list.size++;
    while (i > 0) {
      const std::size_t parent = (i - 1) / 2;
      if (!entry_worse(key, id, keys[parent], ids[parent])) break;
      keys[i] = keys[parent];
      ids[i] = ids[parent];
      i = parent;
    }
    keys[i] = key;
    ids[i] = id;
  } else {
    if (!entry_worse(keys[0], ids[0], key, id)) return;
    const std::size_t n = list.size;
    std::size_t i = 0;
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && entry_worse(keys[child + 1], ids[child + 1], keys[child], ids[child])) {
        ++child;
      }
      if (!entry_worse(keys[child], ids[child], key, id)) break;
      keys[i] = keys[child];
      ids[i] = ids[child];
      i = child;
    }
    keys[i] = key;
    ids[i] = id;
  }
  topk_refresh_threshold(list);
}

// The kernels of one ISA. All ranges are half-open; ids are global candidate row numbers.
struct KernelTable {
  const char* name;
  // out[i] = rows[i] . rows[i], summed exactly as the dot products are (so |x|^2 terms match).
  void (*squared_norms)(Rows rows, float* out);
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
