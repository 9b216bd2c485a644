// Options and promises of the cache's documentation that a bug could silently ignore: the ttl of
// get_or_compute (sync and async), min_healthy_hit_rate, and search's order -- equal scores by key,
// NaN after every number -- on exact ties and real NaNs.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

#include "cache/cache_test_util.hpp"

namespace hetcache::test {
namespace {

using namespace std::chrono_literals;

CacheOptions memory_only(std::size_t dim) {
  CacheOptions options;
  options.dim = dim;
  options.max_bytes = std::size_t{64} << 20;
  return options;
}

TEST(DocumentedOptions, GetOrComputeStoresWithItsTtl) {
  constexpr std::size_t kDim = 8;
  EmbeddingCache cache(memory_only(kDim));
  const std::vector<std::string> sync_keys = {"s1", "s2"}, async_keys = {"a1", "a2"};
  int computed = 0;
  const EmbedFn embed = [&](std::span<const std::string> missing) {
    computed += static_cast<int>(missing.size());
    return matrix_for(std::vector<std::string>(missing.begin(), missing.end()), 1, kDim);
  };
  Matrix out(2, kDim);
  EXPECT_EQ(cache.get_or_compute(sync_keys, out.mutable_view(), embed, 300ms), 2u);
  EXPECT_EQ(cache.get_or_compute_async(async_keys, out.mutable_view(), embed, 300ms).get(), 2u);
  // Within the ttl: cached, nothing computed again.
  EXPECT_EQ(cache.get_or_compute(sync_keys, out.mutable_view(), embed, 300ms), 0u);
  EXPECT_TRUE(cache.contains("a1"));
  std::this_thread::sleep_for(400ms);
  // Past it: expired, so absent and computed again.
  EXPECT_FALSE(cache.contains("s1"));
  EXPECT_FALSE(cache.contains("a2"));
  EXPECT_EQ(cache.get_or_compute(sync_keys, out.mutable_view(), embed), 2u);
  EXPECT_EQ(cache.get_or_compute_async(async_keys, out.mutable_view(), embed).get(), 2u);
  EXPECT_EQ(computed, 8);
}

// 1000 lookups, half of them hits, no eviction: the hit rate 0.5 is reported below a threshold of
// 0.6 and not below 0.4.
TEST(DocumentedOptions, MinHealthyHitRateIsTheThreshold) {
  for (const double threshold : {0.6, 0.4}) {
    CacheOptions options = memory_only(8);
    options.min_healthy_hit_rate = threshold;
    EmbeddingCache cache(options);
    const auto present = make_keys("p", 500), absent = make_keys("x", 500);
    cache.put_batch(present, matrix_for(present, 1, 8).view());
    Matrix out(500, 8);
    cache.get_batch(present, out.mutable_view());
    cache.get_batch(absent, out.mutable_view());
    const CacheHealth health = cache.health();
    if (threshold > 0.5) {
      EXPECT_EQ(health.status, HealthStatus::Degraded);
      ASSERT_EQ(health.reasons.size(), 1u);
      EXPECT_NE(health.reasons[0].find("hit rate 0.5"), std::string::npos) << health.reasons[0];
      EXPECT_NE(health.reasons[0].find("below 0.6"), std::string::npos) << health.reasons[0];
    } else {
      EXPECT_EQ(health.status, HealthStatus::Healthy)
          << (health.reasons.empty() ? "" : health.reasons[0]);
    }
  }
}

// Exact ties (the same vector under several keys, put in an order that is not key order) come
// out by key, ascending; a NaN score ranks after every number, even a very bad one; the same in
// every metric, and for k that cuts through the ties.
TEST(DocumentedOptions, SearchOrdersTiesByKeyAndNaNLast) {
  constexpr std::size_t kDim = 4;
  CacheOptions options = memory_only(kDim);
  options.allow_non_finite = true;
  EmbeddingCache cache(options);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> same = {1, 2, 3, 4}, far = {-9, -9, -9, -9}, bad = {nan, 1, 1, 1};
  cache.put("nan-first-by-key", bad);
  for (const char* key : {"tie-c", "tie-a", "tie-d", "tie-b"}) cache.put(key, same);
  cache.put("zz-far", far);
  const std::vector<float> query = {1, 2, 3, 4};
  for (const Metric metric : {Metric::Dot, Metric::Cosine, Metric::L2}) {
    const auto all = cache.search(MatrixView(query.data(), 1, kDim), 10, metric);
    ASSERT_EQ(all.size(), 1u);
    std::vector<std::string> keys;
    for (const KeyHit& h : all[0]) keys.push_back(h.key);
    EXPECT_EQ(keys, (std::vector<std::string>{"tie-a", "tie-b", "tie-c", "tie-d", "zz-far",
                                              "nan-first-by-key"}))
        << to_string(metric);
    EXPECT_TRUE(std::isnan(all[0].back().score));
    // The public order says the same of every pair.
    for (std::size_t i = 0; i + 1 < all[0].size(); ++i) {
      EXPECT_TRUE(ranks_before(all[0][i], all[0][i + 1], metric)) << i;
      EXPECT_FALSE(ranks_before(all[0][i + 1], all[0][i], metric)) << i;
    }
    const auto two = cache.search(MatrixView(query.data(), 1, kDim), 2, metric);
    ASSERT_EQ(two[0].size(), 2u);
    EXPECT_EQ(two[0][0].key, "tie-a");
    EXPECT_EQ(two[0][1].key, "tie-b");
  }
}

// similarity() checks the query's length against the cache's dimension before reading anything.
TEST(DocumentedOptions, SimilarityRefusesAQueryOfAnotherDimension) {
  EmbeddingCache cache(memory_only(8));
  cache.put("a", std::vector<float>(8, 1.0f));
  const std::vector<float> short_query(7, 1.0f);
  const std::vector<std::string> keys = {"a"};
  expect_error(ErrorCode::DimensionMismatch, "7", [&] { cache.similarity(short_query, keys); });
}

}  // namespace
}  // namespace hetcache::test
