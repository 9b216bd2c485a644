// The durable value format: round trip in every dtype (the compact sets' bits), every
// single-byte corruption caught, and int8 codes or 16-bit elements the encoder never writes refused
// even under a valid checksum.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "cache/cache_test_util.hpp"
#include "cache/durable/value_format.hpp"
#include "compute/cpu/compact_abi.hpp"

namespace hetcache::test {
namespace {

using namespace hetcache::cache;

TEST(ValueFormat, RoundTrip) {
  const auto v = vector_for("key", 1, 77);
  std::string stored;
  encode_value("key", v.data(), 77, 123456789, stored);
  EXPECT_EQ(stored.size(), kValueHeaderBytes + 77 * 4);
  std::vector<float> out(77);
  const auto decoded = decode_value("key", stored, 77, out.data());
  ASSERT_EQ(decoded.status, DecodeStatus::Ok) << decoded.reason;
  EXPECT_EQ(decoded.expiry_ms, 123456789);
  EXPECT_TRUE(row_equals(out.data(), v));
}

constexpr StorageType kEveryType[] = {StorageType::F32, StorageType::F16, StorageType::Bf16,
                                      StorageType::I8};

// Each dtype's value decodes to the compact set's decoded row (same encoders, same bits), in its
// payload's bytes, NaN kept (I8: the whole row), under an odd offset too (a value read from a
// mapped file sits at any address).
TEST(ValueFormat, EveryDtypeDecodesToTheCompactRow) {
  constexpr std::size_t kDim = 77;
  Matrix rows(3, kDim);
  for (std::size_t r = 0; r < 2; ++r) {
    const auto v = vector_for("row" + std::to_string(r), 1, kDim);
    std::copy(v.begin(), v.end(), rows.row(r));
  }
  rows.row(1)[5] = 1e30f;  // beyond f16: infinity
  for (std::size_t j = 0; j < kDim; ++j) rows.row(2)[j] = 0.01f * static_cast<float>(j);
  rows.row(2)[9] = std::numeric_limits<float>::quiet_NaN();
  SimilarityEngine engine;
  for (const StorageType type : kEveryType) {
    const CompactSet set =
        type == StorageType::F32 ? CompactSet() : engine.compact_set(rows.view(), type, false);
    for (std::size_t r = 0; r < rows.rows(); ++r) {
      std::string stored;
      encode_value("key", rows.row(r), kDim, 42, stored, type);
      EXPECT_EQ(stored.size(), kValueHeaderBytes + kDim * element_bytes(type)) << to_string(type);
      const std::string shifted = "x" + stored;
      std::vector<float> out(kDim);
      const auto decoded =
          decode_value("key", std::string_view(shifted).substr(1), kDim, out.data());
      ASSERT_EQ(decoded.status, DecodeStatus::Ok) << to_string(type) << ": " << decoded.reason;
      EXPECT_EQ(decoded.dtype, type);
      EXPECT_EQ(decoded.expiry_ms, 42);
      const std::vector<float> want = type == StorageType::F32
                                          ? std::vector<float>(rows.row(r), rows.row(r) + kDim)
                                          : set.decoded_row(r);
      for (std::size_t j = 0; j < kDim; ++j) {
        if (std::isnan(want[j])) {
          EXPECT_TRUE(std::isnan(out[j])) << to_string(type) << " row " << r << " [" << j << "]";
        } else {
          EXPECT_TRUE(row_equals(&out[j], {want[j]})) << to_string(type) << " row " << r << " ["
                                                      << j << "]: " << out[j] << " vs " << want[j];
        }
      }
    }
  }
}

TEST(ValueFormat, EveryFlippedByteIsCaught) {
  for (const StorageType type : kEveryType) {
    const auto v = vector_for("key", 1, 40);
    std::string stored;
    encode_value("key", v.data(), 40, kNeverExpires, stored, type);
    std::vector<float> out(40, 7.0f);
    for (std::size_t i = 0; i < stored.size(); ++i) {
      for (const int mask : {0x01, 0x80, 0xFF}) {
        std::string bad = stored;
        bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ mask);
        const auto decoded = decode_value("key", bad, 40, out.data());
        ASSERT_EQ(decoded.status, DecodeStatus::Corrupt)
            << to_string(type) << " byte " << i << " mask " << mask;
        ASSERT_EQ(out[0], 7.0f) << "a corrupt value was copied out";
      }
    }
  }
}

TEST(ValueFormat, WrongKeyDimensionOrLengthIsCaught) {
  const auto v = vector_for("key", 1, 40);
  std::string stored;
  encode_value("key", v.data(), 40, kNeverExpires, stored);
  std::vector<float> out(64);
  EXPECT_EQ(decode_value("other", stored, 40, out.data()).status, DecodeStatus::Corrupt);
  EXPECT_EQ(decode_value("key", stored, 39, out.data()).status, DecodeStatus::Corrupt);
  EXPECT_EQ(decode_value("key", stored.substr(0, stored.size() - 1), 40, out.data()).status,
            DecodeStatus::Corrupt);
  EXPECT_EQ(decode_value("key", stored + "x", 40, out.data()).status, DecodeStatus::Corrupt);
  EXPECT_EQ(decode_value("key", "", 40, out.data()).status, DecodeStatus::Corrupt);
}

// The stored value's checksum recomputed as value_format.cpp does (XXH3-64 over the key's length,
// the key, the header with the checksum zeroed, the payload): a forged value with a valid one.
void reseal(std::string_view key, std::string& stored) {
  std::memset(stored.data() + 24, 0, 8);
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  const std::uint64_t key_length = key.size();
  XXH3_64bits_update(&state, &key_length, sizeof key_length);
  XXH3_64bits_update(&state, key.data(), key.size());
  XXH3_64bits_update(&state, stored.data(), stored.size());
  const std::uint64_t sum = XXH3_64bits_digest(&state);
  std::memcpy(stored.data() + 24, &sum, sizeof sum);
}

TEST(ValueFormat, Int8CodesThatEncodingNeverWritesAreRefusedUnderAValidChecksum) {
  // The fuzzer's find (fuzz_value_format, 2026-12-04): scale 0 beside nonzero codes, checksum
  // valid -- it decoded to zeros, which encode to other bytes.
  const std::string found = std::string("HCV1\x01\x00\x04\x00\x14\x00\x00\x00", 12) +
                            std::string(12, '\0') + "\x19\xf4\x22\xce\x99\x60\x24\x85" +
                            "\xde\xe6\xef\xf7" + std::string(1, '\0') +
                            "\x08\x11\x19\x22\x2a\x33\x3b\x44\x4c\x55\x5d\x66\x6e\x77\x7f";
  ASSERT_EQ(found.size(), 32u + 20u);
  std::vector<float> out(20, -7.0f);
  DecodedValue d = decode_value("int8-key", found, 20, out.data());
  EXPECT_EQ(d.status, DecodeStatus::Corrupt) << "scale 0 beside nonzero codes";
  EXPECT_EQ(out, std::vector<float>(20, -7.0f)) << "a refused value writes nothing";

  // An encoded value, then forged one way at a time and resealed.
  const std::vector<float> v = {0.5f, -1.0f, 0.25f, 0.75f};
  std::string good;
  encode_value("k", v.data(), v.size(), 0, good, StorageType::I8);
  ASSERT_EQ(decode_value("k", good, 4, out.data()).status, DecodeStatus::Ok);
  const auto forged = [&](auto&& change) {
    std::string bad = good;
    change(bad);
    reseal("k", bad);
    return decode_value("k", bad, 4, out.data()).status;
  };
  const auto set_scale = [](float scale) {
    return [scale](std::string& bad) { std::memcpy(bad.data() + 12, &scale, sizeof scale); };
  };
  EXPECT_EQ(forged([](std::string&) {}), DecodeStatus::Ok) << "resealing alone changes nothing";
  EXPECT_EQ(forged(set_scale(0.0f)), DecodeStatus::Corrupt);
  EXPECT_EQ(forged(set_scale(-1.0f / 127)), DecodeStatus::Corrupt) << "a negative scale";
  EXPECT_EQ(forged(set_scale(std::numeric_limits<float>::infinity())), DecodeStatus::Corrupt);
  EXPECT_EQ(forged([](std::string& bad) { bad[32 + 1] = 100; }), DecodeStatus::Corrupt)
      << "the largest code under 127";
  EXPECT_EQ(forged([](std::string& bad) { bad[32 + 1] = static_cast<char>(-128); }),
            DecodeStatus::Corrupt)
      << "-128, which encoding never writes";

  // Elements around 1e-41 give a subnormal scale, which encoding does not reproduce from the
  // decoded values: such a value, as written, is still read back.
  const std::vector<float> tiny = {0x1.c22p-138f, -0x1.23b8p-136f, 0x1.2p-144f, 0x1.ca68p-136f};
  std::string written;
  encode_value("k", tiny.data(), tiny.size(), 0, written, StorageType::I8);
  EXPECT_EQ(decode_value("k", written, 4, out.data()).status, DecodeStatus::Ok);
}

TEST(ValueFormat, SixteenBitElementsThatEncodingNeverWritesAreRefusedUnderAValidChecksum) {
  // The fuzzer's find (fuzz_value_format, 2026-12-05): a bf16 element 0x807e, a subnormal, under a
  // valid checksum -- it decoded to -1.2e-38, which encodes to -0 (0x8000).
  const std::string found = std::string("HCV1\x01\x00\x03\x00\x0c", 9) + std::string(7, '\0') +
                            "\x87\xd6\x12" + std::string(5, '\0') +
                            "\x87\xd1\x08\x5c\x5f\x13\x95\x7b" +
                            "\xc0\xbf\x91\xbf\x43\xbf\x7e\x80\xff\xbc\xb3\x3e\x38\x3f" +
                            "\x8c\x3f\xbb\x3f\xea\x3f\x0d\x40\x24\x40";
  ASSERT_EQ(found.size(), 32u + 24u);
  std::vector<float> out(12, -7.0f);
  EXPECT_EQ(decode_value("b", found, 12, out.data()).status, DecodeStatus::Corrupt);
  EXPECT_EQ(out, std::vector<float>(12, -7.0f)) << "a refused value writes nothing";

  // Encoded values, one element forged and resealed: the forms encoding writes decode, the others
  // are refused.
  const std::vector<float> v = {0.5f, -1.0f, 0.25f, 0.75f};
  const auto element = [&](StorageType dtype, std::uint16_t bits) {
    std::string value;
    encode_value("k", v.data(), v.size(), 0, value, dtype);
    std::memcpy(value.data() + 32 + 2, &bits, sizeof bits);
    reseal("k", value);
    return decode_value("k", value, 4, out.data()).status;
  };
  EXPECT_EQ(element(StorageType::Bf16, 0x807e), DecodeStatus::Corrupt) << "a bf16 subnormal";
  EXPECT_EQ(element(StorageType::Bf16, 0x0001), DecodeStatus::Corrupt) << "a bf16 subnormal";
  EXPECT_EQ(element(StorageType::Bf16, 0x8000), DecodeStatus::Ok) << "-0";
  EXPECT_EQ(element(StorageType::Bf16, 0x0080), DecodeStatus::Ok) << "the smallest normal";
  EXPECT_EQ(element(StorageType::Bf16, 0x7f81), DecodeStatus::Corrupt) << "a signalling NaN";
  EXPECT_EQ(element(StorageType::Bf16, 0x7fc1), DecodeStatus::Ok) << "a quiet NaN";
  EXPECT_EQ(element(StorageType::Bf16, 0xff80), DecodeStatus::Ok) << "-inf";
  EXPECT_EQ(element(StorageType::F16, 0x0001), DecodeStatus::Ok) << "f16 keeps subnormals";
  EXPECT_EQ(element(StorageType::F16, 0x7c01), DecodeStatus::Corrupt) << "a signalling NaN";
  EXPECT_EQ(element(StorageType::F16, 0xfe01), DecodeStatus::Ok) << "a quiet NaN";
  EXPECT_EQ(element(StorageType::F16, 0x7c00), DecodeStatus::Ok) << "inf";
  // Every element the encoders write, encoded from its decoded value, is accepted.
  for (const StorageType dtype : {StorageType::F16, StorageType::Bf16}) {
    for (std::uint32_t bits = 0; bits <= 0xFFFF; bits += 7) {
      const auto h = static_cast<std::uint16_t>(bits);
      const float x = dtype == StorageType::F16 ? cpu::float_from_f16(h) : cpu::float_from_bf16(h);
      std::string value;
      const std::vector<float> one = {x};
      encode_value("k", one.data(), 1, 0, value, dtype);
      ASSERT_EQ(decode_value("k", value, 1, out.data()).status, DecodeStatus::Ok) << bits;
    }
  }
}

}  // namespace
}  // namespace hetcache::test
