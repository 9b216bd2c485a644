// The durable value format: round trip in every dtype (the compact sets' bits), and every
// single-byte corruption caught.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "cache/cache_test_util.hpp"
#include "cache/durable/value_format.hpp"

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

}  // namespace
}  // namespace hetcache::test
