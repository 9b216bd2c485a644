// Private: which of kThreadStripes line-aligned copies of a shared structure the calling thread
// writes (the cache's counters, the memory store's shard locks). Threads are numbered in the order
// they first ask, so up to kThreadStripes threads never share a stripe.
#pragma once

#include <atomic>

namespace hetcache {

inline constexpr unsigned kThreadStripes = 16;

inline unsigned thread_stripe() noexcept {
  static std::atomic<unsigned> next{0};
  thread_local const unsigned stripe =
      next.fetch_add(1, std::memory_order_relaxed) % kThreadStripes;
  return stripe;
}

}  // namespace hetcache
