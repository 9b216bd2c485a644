// Private: the binary value stored by the durable stores (RocksDB now, Redis later).
//
// Layout, little-endian, 32-byte header then the payload:
//   0  u32 magic "HCV1"     4  u16 format version   6  u8 dtype   7  u8 flags (0)
//   8  u32 dim             12  f32 I8's scale (0 for the other dtypes)
//   16 i64 expiry, ms since the Unix epoch
//   24 u64 checksum: XXH3-64 over the key, the header with this field zeroed, and the payload.
// dtype: 1 f32 (4 bytes per element), 2 f16, 3 bf16 (2 bytes), 4 i8 (1 byte; value = scale *
// code) -- compact.hpp's StorageType, written with the compact sets' encoders, so a value holds
// the bits a compact memory row of the same type holds. Every dtype is read whatever the store
// writes. The key is in the checksum so a value copied under another key is caught too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <hetcache/compact.hpp>

#include "cache/expiry.hpp"

namespace hetcache::cache {

inline constexpr std::uint32_t kValueMagic = 0x31564348;  // "HCV1" read little-endian
inline constexpr std::uint16_t kValueFormatVersion = 1;
inline constexpr std::size_t kValueHeaderBytes = 32;

// Header + payload of `vector` stored as `dtype` into out (cleared first).
void encode_value(std::string_view key, const float* vector, std::size_t dim,
                  std::int64_t expiry_ms, std::string& out, StorageType dtype = StorageType::F32);

enum class DecodeStatus { Ok, Corrupt };

struct DecodedValue {
  DecodeStatus status = DecodeStatus::Corrupt;
  std::int64_t expiry_ms = 0;
  StorageType dtype = StorageType::F32;  // how the value is stored (when Ok)
  std::string_view reason;               // why it is corrupt (static text)
};

// Checks every header field and the checksum; writes the payload, decoded to f32, to out only
// when Ok.
DecodedValue decode_value(std::string_view key, std::string_view stored, std::size_t dim,
                          float* out);

// The dimension a stored value's header states, when the header is ours (magic, a known dtype) and
// the value's length matches it; nullopt otherwise. The checksum is not checked.
std::optional<std::size_t> stated_dim(std::string_view stored);

// Bytes of a value of `dim` elements stored as `dtype`, header included.
std::size_t value_bytes(StorageType dtype, std::size_t dim);

// Reads only the expiry (for the compaction filter); false when the header is unreadable.
bool peek_expiry(std::string_view stored, std::int64_t& expiry_ms);

}  // namespace hetcache::cache
