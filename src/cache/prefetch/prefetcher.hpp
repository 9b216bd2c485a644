// Private: prefetching that predicts -- which keys will be asked for again, and loading them before
// they are.
//
// Every get adds its keys to a frequency sketch (count-min, bounded memory). A key that misses the
// memory store and the prefetch set but is asked for often enough to earn a slot in the set (its
// estimate is at least kMinEstimate and beats the set's admission floor) is queued; one background
// fiber at a time drains the queue, reading the keys from the durable store and admitting them (the
// loader lives in EmbeddingCache::Impl, which owns the tiers and the write locks). The get that
// queued a key is served as it would be without prefetching; the gets after it find the key
// resident even when the small memory store has long evicted it.
#pragma once

#include <hetcache/future.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "cache/prefetch/frequency_sketch.hpp"
#include "cache/prefetch/prefetch_set.hpp"

namespace hetcache::cache {

class Prefetcher {
 public:
  // A key is worth loading ahead once it has been asked for this often (one-off keys never are).
  static constexpr unsigned kMinEstimate = 2;
  // What warm() adds to a warmed key's count: enough that one newcomer does not displace it at
  // once.
  static constexpr unsigned kWarmWeight = 8;

  Prefetcher(std::size_t dim, std::size_t capacity);

  FrequencySketch& sketch() noexcept { return sketch_; }
  PrefetchSet& set() noexcept { return set_; }

  static std::uint64_t hash(std::string_view key) noexcept;

  // Counts one read of every key; queues those at `absent` (missed everywhere in memory) that are
  // hot enough. When the queue has work and no loader runs, calls launch() to start one.
  void record(std::span<const std::string_view> keys, std::span<const std::size_t> absent,
              const std::function<Future<void>()>& launch);
  // The loader's next keys (at most max); empty means the queue is drained and the loader is done.
  std::vector<std::string> take(std::size_t max);
  // Forgets queued keys (clear()).
  void drop_queue();
  // No loader starts after this; waits for the one running.
  void stop();

 private:
  FrequencySketch sketch_;
  PrefetchSet set_;
  std::size_t max_queued_;
  std::mutex mutex_;  // guards the queue and the loader state
  std::vector<std::string> queue_;
  std::unordered_set<std::string> queued_;
  bool loader_running_ = false;
  bool stopped_ = false;
  Future<void> loader_;
};

}  // namespace hetcache::cache
