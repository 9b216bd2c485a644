// Private: the cache's counters -- one relaxed atomic per entry of HETCACHE_CACHE_COUNTERS
// (include/hetcache/detail/cache_counters.hpp), summed into CacheStats by copy_to -- and the two
// that metrics() adds to the Sequential tier for small calls counted untimed.
//
// Striped: every get adds to five or six counters, and one set of atomics would be written by
// every reading core, its lines moving between cores on every call. Each thread adds to one of
// kStripes line-aligned copies instead (core/thread_stripe.hpp; any stripe is correct, only the sum
// is read), and a read of the counters sums the stripes.
#pragma once

#include <hetcache/cache.hpp>

#include <atomic>
#include <cstdint>

#include "core/thread_stripe.hpp"

namespace hetcache::cache {

struct alignas(64) CounterStripe {
#define HETCACHE_CACHE_ATOMIC(name) std::atomic<std::uint64_t> name{0};
  HETCACHE_CACHE_COUNTERS(HETCACHE_CACHE_ATOMIC)
#undef HETCACHE_CACHE_ATOMIC
  std::atomic<std::uint64_t> untimed_operations{0}, untimed_items{0};
};

class Counters {
 public:
  static constexpr unsigned kStripes = kThreadStripes;

  // The stripe the calling thread adds to.
  CounterStripe& local() noexcept { return stripes_[thread_stripe()]; }

  // The sum of one counter over the stripes.
  std::uint64_t total(std::atomic<std::uint64_t> CounterStripe::*counter) const noexcept {
    std::uint64_t sum = 0;
    for (const CounterStripe& s : stripes_) sum += (s.*counter).load(std::memory_order_relaxed);
    return sum;
  }

  void copy_to(CacheStats& s) const {
#define HETCACHE_CACHE_COPY(name) s.name = total(&CounterStripe::name);
    HETCACHE_CACHE_COUNTERS(HETCACHE_CACHE_COPY)
#undef HETCACHE_CACHE_COPY
  }

 private:
  CounterStripe stripes_[kStripes];
};

inline void add(std::atomic<std::uint64_t>& counter, std::uint64_t n) {
  if (n != 0) counter.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace hetcache::cache
