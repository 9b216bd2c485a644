// Private: what the cache's calls check before anything changes -- key sizes, TTLs -- and how
// messages quote a key.
#pragma once

#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cache/expiry.hpp"

namespace hetcache::cache {

inline constexpr std::size_t kMaxKeyBytes = 64 * 1024;

// The first 40 bytes of a key, quoted, for messages.
inline std::string quoted_prefix(std::string_view key) {
  constexpr std::size_t kShown = 40;
  return "'" + std::string(key.substr(0, kShown)) + (key.size() > kShown ? "...'" : "'");
}

// Expiry for a put now: saturates at "never" instead of overflowing.
inline std::int64_t expiry_for(const Ttl& ttl, std::int64_t now_ms) {
  if (!ttl) return kNeverExpires;
  const auto ms = ttl->count();
  if (ms <= 0) {
    throw Error(ErrorCode::InvalidArgument,
                "ttl must be positive, got " + std::to_string(ms) + " ms");
  }
  if (ms >= kNeverExpires - now_ms) return kNeverExpires;
  return now_ms + ms;
}

inline void check_key(std::string_view key, std::size_t index) {
  if (key.empty())
    throw Error(ErrorCode::InvalidArgument, "key #" + std::to_string(index) + " is empty");
  if (key.size() > kMaxKeyBytes) {
    throw Error(ErrorCode::InvalidArgument,
                "key #" + std::to_string(index) + " " + quoted_prefix(key) + " is " +
                    std::to_string(key.size()) + " bytes; the limit is 65536");
  }
}

}  // namespace hetcache::cache
