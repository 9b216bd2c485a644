// src/cache/prefetch: the frequency sketch that notices hot keys (frequency_sketch.cpp), the
// prefetch set that holds them (prefetch_set.cpp) and the loader queue (this file). The loader runs
// as fibers of the cache's Resources; nothing here reads a store itself.
#include "cache/prefetch/prefetcher.hpp"

#include <algorithm>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace hetcache::cache {

Prefetcher::Prefetcher(std::size_t dim, std::size_t capacity)
    : sketch_(capacity), set_(dim, capacity), max_queued_(std::max<std::size_t>(1024, capacity)) {}

std::uint64_t Prefetcher::hash(std::string_view key) noexcept {
  // Seeded apart from the stripe hash, so the sketch's collisions are unrelated to the stripes'.
  return XXH3_64bits_withSeed(key.data(), key.size(), 0x9e3779b97f4a7c15ull);
}

void Prefetcher::record(std::span<const std::string_view> keys, std::span<const std::size_t> absent,
                        const std::function<Future<void>()>& launch) {
  for (const auto& key : keys) sketch_.add(hash(key));
  sketch_.note_additions(keys.size());
  if (absent.empty()) return;
  const unsigned floor = set_.admission_floor();
  std::vector<std::string_view> hot;
  for (const auto i : absent) {
    const unsigned estimate = sketch_.estimate(hash(keys[i]));
    if (estimate >= kMinEstimate && estimate > floor) hot.push_back(keys[i]);
  }
  if (hot.empty()) return;
  std::lock_guard lock(mutex_);
  if (stopped_) return;
  for (const auto key : hot) {
    if (queue_.size() >= max_queued_) break;
    if (queued_.emplace(key).second) queue_.emplace_back(key);
  }
  if (!loader_running_ && !queue_.empty()) {
    loader_running_ = true;
    loader_ = launch();
  }
}

std::vector<std::string> Prefetcher::take(std::size_t max) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> batch;
  if (stopped_ || queue_.empty()) {
    loader_running_ = false;
    return batch;
  }
  const std::size_t n = std::min(max, queue_.size());
  batch.assign(std::make_move_iterator(queue_.end() - static_cast<std::ptrdiff_t>(n)),
               std::make_move_iterator(queue_.end()));
  queue_.resize(queue_.size() - n);
  for (const auto& key : batch) queued_.erase(key);
  return batch;
}

void Prefetcher::drop_queue() {
  std::lock_guard lock(mutex_);
  queue_.clear();
  queued_.clear();
}

void Prefetcher::stop() {
  Future<void> running;
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    queue_.clear();
    queued_.clear();
    running = std::move(loader_);
  }
  if (running.valid()) running.wait();
}

}  // namespace hetcache::cache
