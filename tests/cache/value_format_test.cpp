// The durable value format: round trip, and every single-byte corruption caught.
#include <gtest/gtest.h>

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

TEST(ValueFormat, EveryFlippedByteIsCaught) {
  const auto v = vector_for("key", 1, 40);
  std::string stored;
  encode_value("key", v.data(), 40, kNeverExpires, stored);
  std::vector<float> out(40, 7.0f);
  for (std::size_t i = 0; i < stored.size(); ++i) {
    for (const int mask : {0x01, 0x80, 0xFF}) {
      std::string bad = stored;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ mask);
      const auto decoded = decode_value("key", bad, 40, out.data());
      ASSERT_EQ(decoded.status, DecodeStatus::Corrupt) << "byte " << i << " mask " << mask;
      ASSERT_EQ(out[0], 7.0f) << "a corrupt value was copied out";
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
