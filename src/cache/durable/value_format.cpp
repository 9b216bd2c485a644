#include "cache/durable/value_format.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "compute/cpu/compact_abi.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// Whether encode_value writes these I8 codes and this scale for the values they decode to. A value
// with a valid checksum can still hold codes the encoder never writes (a scale of 0 beside nonzero
// codes, a negative or infinite scale, -128): they decode to numbers -- infinities and NaNs among
// them -- but not to what was stored, so such a value is not ours. The encoder's rules
// (compact_abi.hpp), checked in one pass over the codes instead of encoding again (8x the decode):
// a NaN scale (a non-finite input) or 0 beside codes of 0 only; a normal scale s with a largest
// code of +-127 and fl(fl(127 s) / 127) == s, which every scale the encoder computes satisfies
// (checked for every finite float) and then its codes re-encode exactly; a subnormal scale (every
// element under about 1e-36) with any codes in [-127, 127], as the encoder's division loses bits
// there; and, as the encoder's one overflow, a scale whose 127-fold is infinite (an element of
// +-FLT_MAX).
bool canonical_i8(const char* payload, std::size_t dim, float scale) {
  std::uint8_t any_bits = 0;
  bool minus_128 = false, extreme = false;
  std::size_t i = 0;
#if defined(__SSE2__)
  // Sixteen at a time (SSE2 is every x86-64's); the byte loop below takes the tail.
  __m128i any = _mm_setzero_si128(), min_seen = any, extreme_seen = any;
  for (; i + 16 <= dim; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(payload + i));
    any = _mm_or_si128(any, v);
    min_seen = _mm_or_si128(min_seen, _mm_cmpeq_epi8(v, _mm_set1_epi8(-128)));
    extreme_seen = _mm_or_si128(extreme_seen, _mm_cmpeq_epi8(v, _mm_set1_epi8(127)));
    extreme_seen = _mm_or_si128(extreme_seen, _mm_cmpeq_epi8(v, _mm_set1_epi8(-127)));
  }
  any_bits = _mm_movemask_epi8(_mm_cmpeq_epi8(any, _mm_setzero_si128())) != 0xffff ? 1 : 0;
  minus_128 = _mm_movemask_epi8(min_seen) != 0;
  extreme = _mm_movemask_epi8(extreme_seen) != 0;
#endif
  for (; i < dim; ++i) {
    const auto b = static_cast<std::uint8_t>(payload[i]);
    any_bits |= b;
    minus_128 |= b == 0x80;
    extreme |= b == 0x7f || b == 0x81;
  }
  if (minus_128) return false;
  if (std::isnan(scale)) {
    const float canonical = std::numeric_limits<float>::quiet_NaN();
    return any_bits == 0 && std::memcmp(&scale, &canonical, sizeof scale) == 0;
  }
  if (!(scale >= 0.0f) || std::signbit(scale) || std::isinf(scale)) return false;
  if (scale == 0.0f) return any_bits == 0;
  if (scale < std::numeric_limits<float>::min()) return true;
  const float largest_value = scale * 127.0f;
  return extreme && (std::isinf(largest_value) || cpu::i8_scale(largest_value) == scale);
}

// Whether encode_value writes these 16-bit elements: every f16 and bf16 element decodes to a float
// that encodes back to the same bits but two kinds, which the encoders never write -- a NaN whose
// quiet bit is clear (they quiet every NaN) and a bf16 subnormal (stored as a signed zero, as
// vdpbf16ps reads it; compact_abi.hpp). Such a value is not ours even under a valid checksum.
bool canonical_16bit(const char* payload, std::size_t dim, StorageType dtype) {
  const bool bf16 = dtype == StorageType::Bf16;
  const std::uint16_t exponent = bf16 ? 0x7F80u : 0x7C00u, quiet = bf16 ? 0x40u : 0x200u;
  const std::uint16_t mantissa = bf16 ? 0x7Fu : 0x3FFu;
  for (std::size_t i = 0; i < dim; ++i) {
    const auto h = load_le<std::uint16_t>(payload + 2 * i);
    const std::uint16_t e = h & exponent, m = h & mantissa;
    if (e == exponent && m != 0 && (h & quiet) == 0) return false;  // a signalling NaN
    if (bf16 && e == 0 && m != 0) return false;                     // a bf16 subnormal
  }
  return true;
}

// The dtype byte of each StorageType, in enum order.
constexpr std::uint8_t kDtypeCodes[] = {1, 2, 3, 4};

std::size_t payload_bytes_of(StorageType dtype, std::size_t dim) {
  switch (dtype) {
    case StorageType::F32:
      return dim * 4;
    case StorageType::F16:
    case StorageType::Bf16:
      return dim * 2;
    case StorageType::I8:
      return dim;
  }
  return 0;
}

bool dtype_from_code(std::uint8_t code, StorageType& dtype) {
  for (std::size_t i = 0; i < std::size(kDtypeCodes); ++i) {
    if (kDtypeCodes[i] == code) {
      dtype = static_cast<StorageType>(i);
      return true;
    }
  }
  return false;
}

}  // namespace

void encode_value(std::string_view key, const float* vector, std::size_t dim,
                  std::int64_t expiry_ms, std::string& out, StorageType dtype) {
  const std::size_t payload_bytes = payload_bytes_of(dtype, dim);
  out.assign(kValueHeaderBytes + payload_bytes, '\0');
  char* header = out.data();
  char* payload = header + kValueHeaderBytes;
  store_le<std::uint32_t>(header + 0, kValueMagic);
  store_le<std::uint16_t>(header + 4, kValueFormatVersion);
  store_le<std::uint8_t>(header + 6, kDtypeCodes[static_cast<std::size_t>(dtype)]);
  store_le<std::uint32_t>(header + 8, static_cast<std::uint32_t>(dim));
  store_le<std::int64_t>(header + 16, expiry_ms);
  float scale = 0.0f;
  switch (dtype) {
    case StorageType::F32:
      std::memcpy(payload, vector, payload_bytes);
      break;
    case StorageType::F16:
      cpu::encode_row_reference<cpu::ElementKind::F16>(vector, dim, payload, nullptr);
      break;
    case StorageType::Bf16:
      cpu::encode_row_reference<cpu::ElementKind::Bf16>(vector, dim, payload, nullptr);
      break;
    case StorageType::I8:
      cpu::encode_row_reference<cpu::ElementKind::I8>(vector, dim, payload, &scale);
      break;
  }
  store_le<float>(header + 12, scale);
  store_le<std::uint64_t>(header + 24, checksum(key, header, payload, payload_bytes));
}

DecodedValue decode_value(std::string_view key, std::string_view stored, std::size_t dim,
                          float* out) {
  DecodedValue result;
  if (stored.size() < kValueHeaderBytes) {
    result.reason = "value shorter than its header";
    return result;
  }
  const char* header = stored.data();
  const char* payload = header + kValueHeaderBytes;
  StorageType dtype = StorageType::F32;
  const bool known_dtype = dtype_from_code(load_le<std::uint8_t>(header + 6), dtype);
  const std::size_t payload_bytes = payload_bytes_of(dtype, dim);
  const float scale = load_le<float>(header + 12);
  if (load_le<std::uint32_t>(header) != kValueMagic) {
    result.reason = "bad magic";
  } else if (load_le<std::uint16_t>(header + 4) != kValueFormatVersion) {
    result.reason = "unknown format version";
  } else if (!known_dtype) {
    result.reason = "unknown dtype";
  } else if (load_le<std::uint8_t>(header + 7) != 0 ||
             (dtype != StorageType::I8 && load_le<std::uint32_t>(header + 12) != 0)) {
    result.reason = "unknown flags";  // this format writes them as zero
  } else if (load_le<std::uint32_t>(header + 8) != dim) {
    result.reason = "wrong dimension";
  } else if (stored.size() != kValueHeaderBytes + payload_bytes) {
    result.reason = "payload length does not match the dimension";
  } else if (load_le<std::uint64_t>(header + 24) != checksum(key, header, payload, payload_bytes)) {
    result.reason = "checksum mismatch";
  } else if (dtype == StorageType::I8 && !canonical_i8(payload, dim, scale)) {
    result.reason = "int8 codes and scale that encoding never writes";
  } else if ((dtype == StorageType::F16 || dtype == StorageType::Bf16) &&
             !canonical_16bit(payload, dim, dtype)) {
    result.reason =
        "16-bit elements that encoding never writes (a signalling NaN, a bf16 subnormal)";
  } else {
    result.status = DecodeStatus::Ok;
    result.expiry_ms = load_le<std::int64_t>(header + 16);
    result.dtype = dtype;
    if (dtype == StorageType::F32) {
      std::memcpy(out, payload, payload_bytes);
    } else if (dtype == StorageType::I8) {
      cpu::decode_row_reference(cpu::ElementKind::I8, payload, dim, scale, out);
    } else {  // 16-bit elements, loaded one by one: a stored value may sit at any address
      for (std::size_t i = 0; i < dim; ++i) {
        const auto h = load_le<std::uint16_t>(payload + 2 * i);
        out[i] = dtype == StorageType::F16 ? cpu::float_from_f16(h) : cpu::float_from_bf16(h);
      }
    }
  }
  return result;
}

std::optional<std::size_t> stated_dim(std::string_view stored) {
  if (stored.size() < kValueHeaderBytes || load_le<std::uint32_t>(stored.data()) != kValueMagic)
    return std::nullopt;
  StorageType dtype = StorageType::F32;
  if (!dtype_from_code(load_le<std::uint8_t>(stored.data() + 6), dtype)) return std::nullopt;
  const std::size_t dim = load_le<std::uint32_t>(stored.data() + 8);
  if (dim == 0 || stored.size() != value_bytes(dtype, dim)) return std::nullopt;
  return dim;
}

std::size_t value_bytes(StorageType dtype, std::size_t dim) {
  return kValueHeaderBytes + payload_bytes_of(dtype, dim);
}

bool peek_expiry(std::string_view stored, std::int64_t& expiry_ms) {
  if (stored.size() < kValueHeaderBytes || load_le<std::uint32_t>(stored.data()) != kValueMagic) {
    return false;
  }
  expiry_ms = load_le<std::int64_t>(stored.data() + 16);
  return true;
}

}  // namespace hetcache::cache
