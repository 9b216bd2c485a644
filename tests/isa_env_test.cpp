// Run by ctest once per HETCACHE_ISA value (see tests/CMakeLists.txt): the forced ISA is used by
// default, or, when the CPU lacks it or the value is bogus, every engine fails with a clear error.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>

#include "reference.hpp"

namespace hetcache::test {
namespace {

TEST(IsaEnvironment, ForcedIsaIsUsedOrRejected) {
  const char* forced = std::getenv("HETCACHE_ISA");
  ASSERT_NE(forced, nullptr) << "ctest sets HETCACHE_ISA for this test";
  Isa isa;
  try {
    isa = parse_isa(forced);
  } catch (const Error&) {
    for (int attempt = 0; attempt < 2; ++attempt) {  // stays an error, never a crash
      try {
        SimilarityEngine engine;
        FAIL() << "HETCACHE_ISA=" << forced << " accepted";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find(forced), std::string::npos) << e.what();
      }
    }
    return;
  }
  if (!isa_supported(isa)) {
    try {
      SimilarityEngine engine;
      FAIL() << "unsupported HETCACHE_ISA=" << forced << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::Unsupported);
      EXPECT_NE(std::string(e.what()).find(std::string(to_string(isa))), std::string::npos);
    }
    return;
  }
  EXPECT_EQ(default_isa(), isa);
  SimilarityEngine engine;
  EXPECT_EQ(engine.isa(), isa);
  std::mt19937_64 rng(test_seed());
  const TestMatrix q = random_rows(rng, 9, 77), c = random_rows(rng, 6000, 77);
  for (Metric metric : {Metric::Dot, Metric::Cosine, Metric::L2}) {
    const Reference ref(q.view(), c.view(), metric);
    const Hits hits = engine.search(q.view(), c.view(), 15, metric);
    for (std::size_t i = 0; i < 9; ++i) expect_valid_hits(ref, hits, i, 6000, 15, metric);
  }
}

}  // namespace
}  // namespace hetcache::test
