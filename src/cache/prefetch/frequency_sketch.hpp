// Private: how often each key was asked for lately, in bounded memory -- a count-min sketch.
//
// depth rows of width 8-bit counters; a key's hash picks one counter per row, adding increments
// all of them and its estimate is their minimum (never below the true count since the last aging,
// above it only by collisions). After 10 x width additions every counter is halved, so the sketch
// follows a workload that changes (the aging TinyLFU uses). Counters saturate at 255.
//
// Updates are relaxed atomic loads and stores, not read-modify-writes: two threads bumping the same
// counter at once may lose one increment. That keeps a get's cost a few nanoseconds per key, and an
// estimate only ranks keys, it is never a count anyone reads back.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace hetcache::cache {

class FrequencySketch {
 public:
  static constexpr std::size_t kDepth = 4;
  static constexpr unsigned kMaxCount = 255;

  // Width: 8 counters per expected distinct hot key, a power of two, at least 1024.
  explicit FrequencySketch(std::size_t expected_hot_keys);

  // Adds `times` to the key's count (saturating).
  void add(std::uint64_t key_hash, unsigned times = 1) noexcept;
  unsigned estimate(std::uint64_t key_hash) const noexcept;
  // Counts `additions` toward the next aging; ages (halves every counter) when the period is due.
  void note_additions(std::size_t additions) noexcept;
  void clear() noexcept;

  std::size_t width() const noexcept { return width_; }
  std::size_t bytes() const noexcept { return width_ * kDepth; }
  std::uint64_t agings() const noexcept { return agings_.load(std::memory_order_relaxed); }

 private:
  std::size_t index(std::uint64_t key_hash, std::size_t row) const noexcept;
  void age() noexcept;

  std::size_t width_;
  std::size_t aging_period_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> counters_;  // kDepth rows of width_
  std::atomic<std::size_t> additions_{0};
  std::atomic<std::uint64_t> agings_{0};
};

}  // namespace hetcache::cache
