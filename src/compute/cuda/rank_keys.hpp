// Private: the GPU tier's ranking keys and its radix select, written once for the device and the
// host, so the host test suite checks the same code the kernels run (tests/gpu/rank_keys_test.cpp).
//
// A key is 64 bits: the high 32 order the score (better first, -0 == +0, NaN after every real
// score), the low 32 are the candidate id. Keys of distinct candidates are distinct, ascending key
// order is exactly the result order of every tier, and a row's top-k is its k smallest keys.
#pragma once

#include <hetcache/types.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define HC_HOST_DEVICE __host__ __device__
#else
#define HC_HOST_DEVICE
#endif

namespace hetcache::gpu {

inline constexpr std::uint64_t kNoKey = ~std::uint64_t{0};  // padding: after every real key
inline constexpr std::uint32_t kNanRank = 0xFFFFFFFFu;      // no real score maps here

HC_HOST_DEVICE inline bool larger_is_better(Metric metric) { return metric != Metric::L2; }

HC_HOST_DEVICE inline std::uint32_t float_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
HC_HOST_DEVICE inline float float_from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Floats in ascending order as unsigned integers (-0 and +0 equal); +-inf at most 0xFF800000.
HC_HOST_DEVICE inline std::uint32_t ascending_bits(float s) {
  const std::uint32_t u = float_bits(s == 0.0f ? 0.0f : s);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

HC_HOST_DEVICE inline std::uint64_t make_key(float score, Metric metric, std::uint32_t id) {
  std::uint32_t rank = kNanRank;
  if (!(score != score)) {
    const std::uint32_t asc = ascending_bits(score);
    rank = larger_is_better(metric) ? ~asc : asc;
  }
  return (std::uint64_t{rank} << 32) | id;
}

// The score a key encodes (exactly the one given to make_key, -0 as +0; NaN for the NaN rank).
HC_HOST_DEVICE inline float score_of_key(std::uint64_t key, Metric metric) {
  const auto rank = static_cast<std::uint32_t>(key >> 32);
  if (rank == kNanRank) return float_from_bits(0x7fc00000u);
  const std::uint32_t asc = larger_is_better(metric) ? ~rank : rank;
  return float_from_bits((asc & 0x80000000u) ? (asc & 0x7FFFFFFFu) : ~asc);
}

// The metric's score from a dot product and the squared norms, as the CPU tiers define it.
HC_HOST_DEVICE inline float score_from_dot(float dot, float qn, float cn, Metric metric) {
  const float nan = float_from_bits(0x7fc00000u);
  switch (metric) {
    case Metric::Dot:
      return dot;
    case Metric::Cosine:
      if (dot != dot || qn != qn || cn != cn) return nan;
      if (qn <= 0.0f || cn <= 0.0f) return 0.0f;  // a zero vector scores 0
      return dot / (std::sqrt(qn) * std::sqrt(cn));
    case Metric::L2: {
      const float d = qn + cn - 2.0f * dot;
      return d != d ? d : (d < 0.0f ? 0.0f : d);  // rounding may dip below 0; a distance cannot
    }
  }
  return dot;
}

// Radix select of the `keep` smallest of n keys (distinct, except kNoKey padding), key_of(i) for
// i < n, written unsorted to out[0 .. keep); out[.. pad_to) past the real keys holds kNoKey. One
// call per block: Block gives thread(), threads(), sync(), atomic_add() and its shared state.
struct SelectShared {
  unsigned histogram[256];
  std::uint64_t prefix, mask;
  unsigned long long remaining, written;
};

template <typename Block, typename KeyOf>
HC_HOST_DEVICE void select_smallest(Block& block, SelectShared& sh, const KeyOf& key_of,
                                    std::size_t n, std::size_t keep, std::size_t pad_to,
                                    std::uint64_t* out) {
  const unsigned t = block.thread(), step = block.threads();
  if (keep > n) keep = n;
  if (t == 0) {
    sh.prefix = 0;
    sh.mask = 0;
    sh.remaining = keep;
    sh.written = 0;
  }
  block.sync();
  if (keep < n && keep > 0) {
    // 8 passes of 8 bits, most significant first: the bucket holding the keep-th smallest key
    // among those that match the prefix so far extends the prefix.
    for (int shift = 56; shift >= 0; shift -= 8) {
      for (unsigned b = t; b < 256; b += step) sh.histogram[b] = 0;
      block.sync();
      for (std::size_t i = t; i < n; i += step) {
        const std::uint64_t key = key_of(i);
        if ((key & sh.mask) == sh.prefix) block.atomic_add(sh.histogram[(key >> shift) & 0xFF], 1u);
      }
      block.sync();
      if (t == 0) {
        unsigned long long below = 0;
        for (int b = 0; b < 256; ++b) {
          if (below + sh.histogram[b] >= sh.remaining) {
            sh.prefix |= std::uint64_t(b) << shift;
            sh.remaining -= below;
            break;
          }
          below += sh.histogram[b];
        }
        sh.mask |= std::uint64_t{0xFF} << shift;
      }
      block.sync();
    }
  }
  // sh.prefix is now the keep-th smallest key: take every key not above it (padding only when
  // the row has fewer real keys than keep).
  const std::uint64_t last = keep < n ? sh.prefix : kNoKey;
  if (keep > 0) {
    for (std::size_t i = t; i < n; i += step) {
      const std::uint64_t key = key_of(i);
      if (key <= last && key != kNoKey) {
        const unsigned long long at = block.atomic_add(sh.written, 1ull);
        if (at < keep) out[at] = key;
      }
    }
  }
  block.sync();
  const std::size_t filled = sh.written < keep ? static_cast<std::size_t>(sh.written) : keep;
  for (std::size_t i = filled + t; i < pad_to; i += step) out[i] = kNoKey;
}

}  // namespace hetcache::gpu
