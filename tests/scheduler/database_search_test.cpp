// Scheduler::search_database: a RocksDB database searched in batches (two here: 65,536 + 4,464
// rows) gives the hits of one search over everything -- the same keys and scores as the cache's
// own search over the same vectors held in memory, exact ties and NaN rows included.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "cache/cache_test_util.hpp"
#include "reference.hpp"

namespace hetcache::test {
namespace {

constexpr std::size_t kDim = 16, kRows = 70000;

TEST(DatabaseSearch, BatchesMergeIntoTheHitsOfOneSearch) {
  TempDir dir;
  CacheOptions options;
  options.dim = kDim;
  options.allow_non_finite = true;
  RocksDbOptions rocks;
  rocks.path = dir.sub("db");
  options.durable = rocks;
  EmbeddingCache cache(options);  // 1 GiB memory tier: every vector stays in memory too
  std::vector<std::string> keys;
  Matrix values(kRows, kDim);
  std::mt19937_64 rng(test_seed());
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (std::size_t i = 0; i < kRows; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "v%06zu", (i * 7919) % kRows);  // not in scan order
    keys.emplace_back(key);
    for (std::size_t c = 0; c < kDim; ++c) values.row(i)[c] = u(rng);
  }
  // Exact ties across both batches (the same vector under keys far apart), and NaN rows.
  for (const std::size_t i : {3u, 40000u, 69999u}) std::copy_n(values.row(11), kDim, values.row(i));
  for (const std::size_t i : {5u, 66000u})
    values.row(i)[2] = std::numeric_limits<float>::quiet_NaN();
  cache.put_batch(keys, values.view());

  Matrix queries(3, kDim);
  std::copy_n(values.row(11), kDim, queries.row(0));  // its ties are the best hits
  for (std::size_t q = 1; q < 3; ++q)
    for (std::size_t c = 0; c < kDim; ++c) queries.row(q)[c] = u(rng);
  SchedulerConfig config;
  config.strategy = Strategy::CpuOnly;
  Scheduler scheduler(config);
  for (const Metric metric : {Metric::Dot, Metric::Cosine, Metric::L2}) {
    for (const std::size_t k : {std::size_t{1}, std::size_t{10}, kRows + 5}) {
      std::uint64_t last_progress = 0;
      const auto found = scheduler.search_database(
          cache, queries.view(), k, metric, [&](std::uint64_t rows) { last_progress = rows; });
      const auto want = cache.search(queries.view(), k, metric);
      EXPECT_EQ(found.counts.visited, kRows);
      EXPECT_EQ(last_progress, kRows);
      EXPECT_EQ(found.batches[static_cast<std::size_t>(Tier::Cpu)], 2u);
      ASSERT_EQ(found.hits.size(), want.size());
      for (std::size_t q = 0; q < want.size(); ++q) {
        ASSERT_EQ(found.hits[q].size(), std::min(k, kRows)) << to_string(metric);
        ASSERT_EQ(found.hits[q].size(), want[q].size());
        for (std::size_t i = 0; i < want[q].size(); ++i) {
          ASSERT_EQ(found.hits[q][i].key, want[q][i].key)
              << to_string(metric) << " k " << k << " query " << q << " hit " << i;
          const float a = found.hits[q][i].score, b = want[q][i].score;
          ASSERT_TRUE(a == b || (std::isnan(a) && std::isnan(b))) << a << " vs " << b;
        }
      }
      if (k == 10 && metric != Metric::Dot) {  // the four copies of query 0 first, by key (for
                                               // Dot a longer vector may score higher)
        std::vector<std::string> ties;
        for (std::size_t i = 0; i < 4; ++i) ties.push_back(found.hits[0][i].key);
        EXPECT_TRUE(std::is_sorted(ties.begin(), ties.end())) << to_string(metric);
      }
      if (k > kRows) {  // NaN scores last
        EXPECT_TRUE(std::isnan(found.hits[1].back().score));
        EXPECT_TRUE(std::isnan(found.hits[1][kRows - 2].score));
        EXPECT_FALSE(std::isnan(found.hits[1][kRows - 3].score));
      }
    }
  }
}

TEST(DatabaseSearch, NeedsADatabaseAndQueriesOfItsDimension) {
  CacheOptions memory_only;
  memory_only.dim = kDim;
  EmbeddingCache cache(memory_only);
  Scheduler scheduler;
  Matrix queries(1, kDim);
  expect_error(ErrorCode::Unsupported, "",
               [&] { scheduler.search_database(cache, queries.view(), 5); });
  Matrix wide(1, kDim + 1);
  expect_error(ErrorCode::DimensionMismatch, "dimension 17",
               [&] { scheduler.search_database(cache, wide.view(), 5); });
}

}  // namespace
}  // namespace hetcache::test
