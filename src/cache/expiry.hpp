// Private: expiry times shared by both stores and the stored value format, and the result of a
// lookup in a memory-resident store. An expiry is wall-clock milliseconds since the Unix epoch, so
// it means the same after a restart; "never" is the largest value, which no clock reading reaches.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>

namespace hetcache::cache {

inline constexpr std::int64_t kNeverExpires = std::numeric_limits<std::int64_t>::max();

inline std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline bool is_expired(std::int64_t expiry_ms, std::int64_t now_ms) noexcept {
  return expiry_ms <= now_ms;
}

// What looking a key up in a memory-resident store (the memory store, the prefetch set) found.
enum class Lookup { Hit, Miss, Expired };

}  // namespace hetcache::cache
