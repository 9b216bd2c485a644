// Private: the cache's counters -- one relaxed atomic per entry of HETCACHE_CACHE_COUNTERS
// (include/hetcache/detail/cache_counters.hpp), copied into CacheStats by copy_to -- and the two
// that metrics() adds to the Sequential tier for small calls counted untimed.
#pragma once

#include <hetcache/cache.hpp>

#include <atomic>
#include <cstdint>

namespace hetcache::cache {

struct Counters {
#define HETCACHE_CACHE_ATOMIC(name) std::atomic<std::uint64_t> name{0};
  HETCACHE_CACHE_COUNTERS(HETCACHE_CACHE_ATOMIC)
#undef HETCACHE_CACHE_ATOMIC
  std::atomic<std::uint64_t> untimed_operations{0}, untimed_items{0};

  void copy_to(CacheStats& s) const {
#define HETCACHE_CACHE_COPY(name) s.name = name.load(std::memory_order_relaxed);
    HETCACHE_CACHE_COUNTERS(HETCACHE_CACHE_COPY)
#undef HETCACHE_CACHE_COPY
  }
};

inline void add(std::atomic<std::uint64_t>& counter, std::uint64_t n) {
  if (n != 0) counter.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace hetcache::cache
