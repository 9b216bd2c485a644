// Private to src/: the interface between the compact-set search (compact_search.cpp) and the
// per-ISA kernels for candidates stored as f16, bf16 or int8. The same rules as kernel_abi.hpp:
// plain structs and `static inline` helpers only, because the ISA units include this header.
//
// A compact search runs in two steps. The kernels compute each candidate's low-precision key and
// offer it to a SurvivorList together with its slack, a proven bound on |low-precision key - f32
// key| (compact_set.cpp derives it). The list keeps every candidate whose key + slack reaches the
// k-th largest key - slack seen so far: no candidate of the f32 top-k can fall below that floor.
// Exact mode then re-scores the survivors from the f32 rows; fast mode ranks them as they are.
#pragma once

#include <cstddef>
#include <cstdint>

#include "compute/cpu/kernel_abi.hpp"

namespace hetcache::cpu {

enum class ElementKind : int { F16 = 1, Bf16 = 2, I8 = 3 };

// How a kernel reads the queries: as f32, rounded to bf16, or as int8 codes + 128 (unsigned, for
// vpdpbusd) with a per-query scale, value = scale * (code - 128).
enum class QueryCoding : int { F32 = 0, Bf16 = 1, U8 = 2 };

// Compact rows as the kernels see them: `stride` in elements; I8 rows decode as scales[r] * code.
// Each row is zero-padded to a multiple of 64 bytes (the AMX kernels read whole 64-byte chunks).
struct CompactRows {
  const void* data;
  std::size_t rows;
  std::size_t dim;
  std::size_t stride;
  ElementKind kind;
  const float* scales;            // I8 only
  const std::int32_t* code_sums;  // I8 only: the sum of each row's codes
};

// Per-candidate slack of one metric: slack(q, c) = s_q * beta[c] + r_q * norm[c] + add[c] + t_q
// (compact_set.cpp). beta and norm are never null in exact mode; add may be null (0).
struct SlackRows {
  const float* beta;
  const float* norm;
  const float* add;
};

// What the kernels need for one compact search.
struct CompactProblem {
  Rows queries;                    // f32 queries
  const void* query_codes;         // the queries as the kernel's QueryCoding reads them (not F32)
  std::size_t query_codes_stride;  // elements per query row
  const float* query_code_scale;   // U8: per query
  CompactRows candidates;
  MetricKind metric;
  const float* query_term;      // per query (see Problem); unused for Dot
  const float* candidate_term;  // per candidate: 1/|c| (Cosine) or |c|^2 (L2) of the f32 rows
  bool exact;                   // false: every slack is 0 (fast mode)
  SlackRows slack;              // exact mode only
  const float* query_scale;     // s_q, r_q, t_q per query (exact mode only)
  const float* query_round;
  const float* query_add;
};

struct Survivor {
  float key;
  float slack;
  std::int64_t id;
};

// One query's survivors. `floor` is the largest k-th (key - slack) seen so far (-inf until a
// selection has run); a candidate is appended unless key + slack < floor, so a NaN bound keeps it.
struct SurvivorList {
  Survivor* entries;
  std::size_t size;
  std::size_t capacity;
  std::size_t k;
  float floor;
  void* owner;  // the storage survivor_select may grow (compact_search.cpp)
};

// Raises the floor from the entries, drops those under it, and makes room (defined in
// compact_search.cpp, baseline code). May move `entries`.
void survivor_select(SurvivorList& list);

static inline void survivor_offer(SurvivorList& list, float key, float slack, std::int64_t id) {
  list.entries[list.size].key = key;
  list.entries[list.size].slack = slack;
  list.entries[list.size].id = id;
  if (++list.size == list.capacity) survivor_select(list);
}

struct CompactKernelTable {
  const char* name;
  QueryCoding query_coding;  // what offer_block reads of the queries
  // Offers queries [q0,q1) x candidates [c0,c1) to lists[q - q0].
  void (*offer_block)(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                      std::size_t c1, SurvivorList* lists);
  // Encodes f32 rows (round to nearest even, NaN kept; I8: symmetric per-row scale into scales,
  // NaN for a row holding NaN or infinity) into dst rows of dst_stride elements.
  void (*encode)(Rows src, ElementKind kind, void* dst, std::size_t dst_stride, float* scales);
  // Decodes one row of dim codes to f32 (I8: scale * code, rounded once): the bits of the
  // reference decoders (float_from_f16, float_from_bf16).
  void (*decode)(const void* codes, ElementKind kind, std::size_t dim, float scale, float* out);
};

extern const CompactKernelTable kScalarCompactKernels;
#if defined(HETCACHE_X86_KERNELS)
extern const CompactKernelTable kAvx2CompactKernels;
extern const CompactKernelTable kAvx512CompactKernels;
extern const CompactKernelTable kAvx512Bf16CompactKernels;  // Bf16 rows only (vdpbf16ps)
extern const CompactKernelTable kAvx512VnniCompactKernels;  // I8 rows only (vpdpbusd)
extern const CompactKernelTable kAvxVnniCompactKernels;     // I8 rows only (VEX vpdpbusd, AVX2)
extern const CompactKernelTable kAmxBf16CompactKernels;     // Bf16 rows only (tdpbf16ps)
extern const CompactKernelTable kAmxI8CompactKernels;       // I8 rows only (tdpbsud)
// The AMX kernels over a software model of the tile instructions (amx_model.inl): for the tests,
// on CPUs with AVX512-BF16 and AVX512-VNNI.
extern const CompactKernelTable kAmxModelBf16CompactKernels;
extern const CompactKernelTable kAmxModelI8CompactKernels;
#endif

// Encoding rules, shared by every unit so they give the same bits.

// f32 -> bf16, round to nearest even; a NaN stays a (quiet) NaN. A result below bf16's smallest
// normal (2^-126) is stored as a signed zero: vdpbf16ps reads such inputs as zero, so the stored
// value is the value every kernel multiplies.
static inline std::uint16_t bf16_from_bits(std::uint32_t bits) {
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
  const auto r = static_cast<std::uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
  return (r & 0x7F80u) == 0 ? static_cast<std::uint16_t>(r & 0x8000u) : r;
}

// f32 -> IEEE half, round to nearest even (what F16C's vcvtps2ph does with rounding mode 0):
// overflow to infinity, subnormals kept, a NaN stays a quiet NaN with its payload's top bits.
static inline std::uint16_t f16_from_bits(std::uint32_t x) {
  const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t a = x & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
  if (a >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65520: inf
  if (a >= 0x38800000u) {                                                   // normal (>= 2^-14)
    const std::uint32_t r = a - 0x38000000u;                                // rebias 127 -> 15
    return static_cast<std::uint16_t>(sign | ((r + 0xFFFu + ((r >> 13) & 1u)) >> 13));
  }
  if (a < 0x33000000u) return sign;              // under 2^-25: rounds to zero
  const std::uint32_t shift = 126u - (a >> 23);  // 14..24: units of 2^-24
  const std::uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
  std::uint32_t r = m >> shift;
  const std::uint32_t rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
  if (rest > half || (rest == half && (r & 1u))) ++r;
  return static_cast<std::uint16_t>(sign | r);
}

static inline float float_from_bits(std::uint32_t bits) {
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

static inline float float_from_f16(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
  if (e == 0x1Fu) return float_from_bits(sign | 0x7F800000u | (m << 13));
  if (e != 0) return float_from_bits(sign | ((e + 112u) << 23) | (m << 13));
  const float v = static_cast<float>(m) * 5.9604644775390625e-8f;  // m * 2^-24, exact
  return sign != 0 ? -v : v;
}

static inline float float_from_bf16(std::uint16_t b) {
  return float_from_bits(static_cast<std::uint32_t>(b) << 16);
}

// The I8 rule: scale = max|x| / 127, code = round_even(x / scale) clamped to [-127, 127] (0 when
// the scale is 0), value = scale * code. IEEE division rounds the same in every unit.
static inline float i8_scale(float max_abs) { return max_abs / 127.0f; }

// The scalar encoders: the reference every unit's encode_row must match bit for bit.
template <ElementKind K>
static inline void encode_row_reference(const float* src, std::size_t dim, void* dst,
                                        float* scale) {
  if constexpr (K == ElementKind::I8) {
    float max_abs = 0.0f;
    bool finite = true;
    for (std::size_t i = 0; i < dim; ++i) {
      const float a = __builtin_fabsf(src[i]);
      finite = finite && a <= 3.40282347e38f;  // false for inf and NaN
      max_abs = a > max_abs ? a : max_abs;
    }
    auto* out = static_cast<signed char*>(dst);
    const float s = i8_scale(max_abs);
    *scale = finite ? s : __builtin_nanf("");
    for (std::size_t i = 0; i < dim; ++i) {
      float code = (finite && s > 0.0f) ? __builtin_nearbyintf(src[i] / s) : 0.0f;
      code = code > 127.0f ? 127.0f : (code < -127.0f ? -127.0f : code);
      out[i] = static_cast<signed char>(code);
    }
  } else {
    auto* out = static_cast<std::uint16_t*>(dst);
    for (std::size_t i = 0; i < dim; ++i) {
      std::uint32_t bits;
      __builtin_memcpy(&bits, src + i, sizeof bits);
      out[i] = K == ElementKind::F16 ? f16_from_bits(bits) : bf16_from_bits(bits);
    }
  }
}

// The reference decoder every unit's decode must match bit for bit: dim codes of `kind` to f32
// (I8: scale * code, rounded once).
static inline void decode_row_reference(ElementKind kind, const void* codes, std::size_t dim,
                                        float scale, float* out) {
  if (kind == ElementKind::I8) {
    const auto* c = static_cast<const signed char*>(codes);
    for (std::size_t i = 0; i < dim; ++i) out[i] = scale * static_cast<float>(c[i]);
    return;
  }
  const auto* h = static_cast<const std::uint16_t*>(codes);
  for (std::size_t i = 0; i < dim; ++i) {
    out[i] = kind == ElementKind::F16 ? float_from_f16(h[i]) : float_from_bf16(h[i]);
  }
}

}  // namespace hetcache::cpu
