#include "cache/durable/value_format.hpp"

#include <bit>
#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace hetcache::cache {
namespace {

static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559);

template <typename T>
void store_le(char* at, T value) {
  // x86 and every platform we build for are little-endian; the assert keeps us honest.
  static_assert(std::endian::native == std::endian::little, "big-endian hosts need byte swaps");
  std::memcpy(at, &value, sizeof(T));
}

template <typename T>
T load_le(const char* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}

std::uint64_t checksum(std::string_view key, const char* header, const char* payload,
                       std::size_t payload_bytes) {
  char zeroed[kValueHeaderBytes];
  std::memcpy(zeroed, header, kValueHeaderBytes);
  std::memset(zeroed + 24, 0, 8);
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  const std::uint64_t key_length = key.size();
  XXH3_64bits_update(&state, &key_length, sizeof(key_length));
  XXH3_64bits_update(&state, key.data(), key.size());
  XXH3_64bits_update(&state, zeroed, kValueHeaderBytes);
  XXH3_64bits_update(&state, payload, payload_bytes);
  return XXH3_64bits_digest(&state);
}

}  // namespace

void encode_value(std::string_view key, const float* vector, std::size_t dim,
                  std::int64_t expiry_ms, std::string& out) {
  const std::size_t payload_bytes = dim * sizeof(float);
  out.assign(kValueHeaderBytes + payload_bytes, '\0');
  char* header = out.data();
  store_le<std::uint32_t>(header + 0, kValueMagic);
  store_le<std::uint16_t>(header + 4, kValueFormatVersion);
  store_le<std::uint8_t>(header + 6, kDtypeF32);
  store_le<std::uint32_t>(header + 8, static_cast<std::uint32_t>(dim));
  store_le<std::int64_t>(header + 16, expiry_ms);
  std::memcpy(header + kValueHeaderBytes, vector, payload_bytes);
  store_le<std::uint64_t>(header + 24,
                          checksum(key, header, header + kValueHeaderBytes, payload_bytes));
}

DecodedValue decode_value(std::string_view key, std::string_view stored, std::size_t dim,
                          float* out) {
  DecodedValue result;
  const std::size_t payload_bytes = dim * sizeof(float);
  if (stored.size() < kValueHeaderBytes) {
    result.reason = "value shorter than its header";
    return result;
  }
  const char* header = stored.data();
  if (load_le<std::uint32_t>(header) != kValueMagic) {
    result.reason = "bad magic";
  } else if (load_le<std::uint16_t>(header + 4) != kValueFormatVersion) {
    result.reason = "unknown format version";
  } else if (load_le<std::uint8_t>(header + 6) != kDtypeF32) {
    result.reason = "unknown dtype";
  } else if (load_le<std::uint8_t>(header + 7) != 0 || load_le<std::uint32_t>(header + 12) != 0) {
    result.reason = "unknown flags";  // this format writes them as zero
  } else if (load_le<std::uint32_t>(header + 8) != dim) {
    result.reason = "wrong dimension";
  } else if (stored.size() != kValueHeaderBytes + payload_bytes) {
    result.reason = "payload length does not match the dimension";
  } else if (load_le<std::uint64_t>(header + 24) !=
             checksum(key, header, header + kValueHeaderBytes, payload_bytes)) {
    result.reason = "checksum mismatch";
  } else {
    result.status = DecodeStatus::Ok;
    result.expiry_ms = load_le<std::int64_t>(header + 16);
    std::memcpy(out, header + kValueHeaderBytes, payload_bytes);
  }
  return result;
}

bool peek_expiry(std::string_view stored, std::int64_t& expiry_ms) {
  if (stored.size() < kValueHeaderBytes || load_le<std::uint32_t>(stored.data()) != kValueMagic) {
    return false;
  }
  expiry_ms = load_le<std::int64_t>(stored.data() + 16);
  return true;
}

}  // namespace hetcache::cache
