// Any bytes as a stored value under any key, checksums forged too (libFuzzer learns them from the
// comparison): decoding accepts only what encode_value wrote for that key (checked by re-encoding
// in the value's dtype: every dtype's encoding of its own decoded values gives the same bytes, an
// int8 value with a subnormal scale aside), and never reads past the bytes.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cache/durable/value_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const std::size_t dim = 1 + data[0] % 64, key_len = data[1] % 32;
  if (size < 2 + key_len) return 0;
  const std::string key(reinterpret_cast<const char*>(data + 2), key_len);
  const std::string stored(reinterpret_cast<const char*>(data + 2 + key_len), size - 2 - key_len);
  std::vector<float> out(dim, -7.0f);
  const auto decoded = hetcache::cache::decode_value(key, stored, dim, out.data());
  std::int64_t expiry = 0;
  const bool peeked = hetcache::cache::peek_expiry(stored, expiry);
  if (decoded.status == hetcache::cache::DecodeStatus::Ok) {
    if (!peeked || expiry != decoded.expiry_ms) std::abort();
    std::string again;
    hetcache::cache::encode_value(key, out.data(), dim, decoded.expiry_ms, again, decoded.dtype);
    // Only our own encoding is accepted -- bar an int8 value whose scale is subnormal or 127 times
    // it overflows, which the encoder itself does not reproduce (value_format.cpp: canonical_i8).
    float scale = 0.0f;
    std::memcpy(&scale, stored.data() + 12, sizeof scale);
    const bool unreproduced_i8 =
        decoded.dtype == hetcache::StorageType::I8 && scale > 0.0f &&
        (scale < std::numeric_limits<float>::min() || std::isinf(scale * 127.0f));
    if (again != stored && !unreproduced_i8) std::abort();
  } else {
    for (const float v : out)
      if (std::memcmp(&v, &out[0], sizeof v) != 0 || v != -7.0f) std::abort();  // untouched
  }
  return 0;
}
