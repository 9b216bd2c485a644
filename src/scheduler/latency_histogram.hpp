// Private: a lock-free latency histogram, log-spaced with 8 buckets per doubling from 64 ns to
// about 2^40 ns (18 minutes), so a quantile is known within 9%.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>

namespace hetcache::scheduler {

class LatencyHistogram {
 public:
  static constexpr int kPerDoubling = 8;
  static constexpr int kFirstLog2 = 6;  // 64 ns
  static constexpr int kBuckets = (40 - kFirstLog2) * kPerDoubling + 1;

  void add(std::uint64_t ns) noexcept {
    counts_[bucket_of(ns)].fetch_add(1, std::memory_order_relaxed);
  }

  // The q-quantile (0 < q <= 1) in microseconds: the geometric middle of the bucket holding it;
  // 0 when empty.
  double quantile_us(double q) const noexcept {
    std::array<std::uint64_t, kBuckets> counts;
    std::uint64_t total = 0;
    for (int b = 0; b < kBuckets; ++b)
      total += counts[b] = counts_[b].load(std::memory_order_relaxed);
    if (total == 0) return 0.0;
    const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total)));
    std::uint64_t seen = 0;
    for (int b = 0; b < kBuckets; ++b) {
      seen += counts[b];
      if (seen >= rank && counts[b] > 0) return std::sqrt(lower_ns(b) * lower_ns(b + 1)) / 1e3;
    }
    return lower_ns(kBuckets) / 1e3;
  }

  void reset() noexcept {
    for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
  }

  static int bucket_of(std::uint64_t ns) noexcept {
    if (ns < (std::uint64_t{1} << kFirstLog2)) return 0;
    const int log2 = static_cast<int>(std::bit_width(ns)) - 1;
    // The 3 bits below the leading one pick the eighth of the doubling.
    const int fraction = static_cast<int>((ns >> (log2 - 3)) & 7);
    const int b = (log2 - kFirstLog2) * kPerDoubling + fraction;
    return b < kBuckets ? b : kBuckets - 1;
  }
  // Lower edge of bucket b in ns (bucket 0 also holds everything below 64 ns).
  static double lower_ns(int b) noexcept {
    const int log2 = kFirstLog2 + b / kPerDoubling;
    return std::ldexp(1.0 + (b % kPerDoubling) / 8.0, log2);
  }

 private:
  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
};

}  // namespace hetcache::scheduler
