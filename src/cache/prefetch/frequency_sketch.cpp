#include "cache/prefetch/frequency_sketch.hpp"

#include <algorithm>
#include <bit>

namespace hetcache::cache {

FrequencySketch::FrequencySketch(std::size_t expected_hot_keys)
    : width_(std::bit_ceil(std::max<std::size_t>(1024, expected_hot_keys * 8))),
      aging_period_(10 * width_),
      counters_(new std::atomic<std::uint8_t>[kDepth * width_]) {
  clear();
}

std::size_t FrequencySketch::index(std::uint64_t key_hash, std::size_t row) const noexcept {
  // Double hashing (Kirsch-Mitzenmacher): row i uses h1 + i * h2, with h2 odd so rows differ.
  const std::uint64_t h1 = key_hash;
  const std::uint64_t h2 = (key_hash >> 32 | key_hash << 32) | 1;
  return row * width_ + ((h1 + row * h2) & (width_ - 1));
}

void FrequencySketch::add(std::uint64_t key_hash, unsigned times) noexcept {
  for (std::size_t row = 0; row < kDepth; ++row) {
    auto& counter = counters_[index(key_hash, row)];
    const unsigned now = counter.load(std::memory_order_relaxed);
    counter.store(static_cast<std::uint8_t>(std::min(kMaxCount, now + times)),
                  std::memory_order_relaxed);
  }
}

unsigned FrequencySketch::estimate(std::uint64_t key_hash) const noexcept {
  unsigned least = kMaxCount;
  for (std::size_t row = 0; row < kDepth; ++row)
    least =
        std::min<unsigned>(least, counters_[index(key_hash, row)].load(std::memory_order_relaxed));
  return least;
}

void FrequencySketch::note_additions(std::size_t additions) noexcept {
  const std::size_t before = additions_.fetch_add(additions, std::memory_order_relaxed);
  // Exactly one caller crosses each multiple of the period, and that one ages.
  if ((before + additions) / aging_period_ != before / aging_period_) age();
}

void FrequencySketch::age() noexcept {
  for (std::size_t i = 0; i < kDepth * width_; ++i) {
    const unsigned now = counters_[i].load(std::memory_order_relaxed);
    counters_[i].store(static_cast<std::uint8_t>(now / 2), std::memory_order_relaxed);
  }
  agings_.fetch_add(1, std::memory_order_relaxed);
}

void FrequencySketch::clear() noexcept {
  for (std::size_t i = 0; i < kDepth * width_; ++i)
    counters_[i].store(0, std::memory_order_relaxed);
}

}  // namespace hetcache::cache
