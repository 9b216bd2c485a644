// Prefetching: the frequency sketch, a Zipf workload over a small memory tier (hit rate with
// prefetching on vs off), warm(), true prefetch counts, writes keeping prefetched keys current,
// option checks, and the loader reading from a real Redis.
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "cache/cache_test_util.hpp"
#include "cache/prefetch/frequency_sketch.hpp"
#include "cache/prefetch/prefetcher.hpp"
#include "reference.hpp"
#include "support/redis_server.hpp"

namespace hetcache {
namespace {

using test::make_keys;
using test::matrix_for;
using test::row_equals;
using test::TempDir;
using test::vector_for;

constexpr std::size_t kDim = 32;

CacheOptions rocksdb_options(const std::string& path, std::size_t max_entries, bool prefetching,
                             std::size_t prefetch_cache_size = 1000) {
  CacheOptions options;
  options.dim = kDim;
  options.max_entries = max_entries;
  options.durable = RocksDbOptions{};
  options.durable->path = path;
  options.enable_prefetching = prefetching;
  options.prefetch_cache_size = prefetch_cache_size;
  return options;
}

// Key ranks drawn from Zipf(s) over n keys: P(rank r) ~ 1 / (r + 1)^s.
class ZipfKeys {
 public:
  ZipfKeys(std::size_t n, double s, std::uint64_t seed) : rng_(seed) {
    cdf_.reserve(n);
    double sum = 0;
    for (std::size_t r = 0; r < n; ++r) cdf_.push_back(sum += 1.0 / std::pow(double(r + 1), s));
    for (double& c : cdf_) c /= sum;
  }
  std::size_t next() {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng_);
    return std::min<std::size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin(),
                                 cdf_.size() - 1);
  }

 private:
  std::mt19937_64 rng_;
  std::vector<double> cdf_;
};

TEST(FrequencySketch, NeverUnderestimatesAndRanksHeavyKeysFirst) {
  cache::FrequencySketch sketch(1000);
  std::vector<unsigned> truth(5000, 0);
  ZipfKeys zipf(truth.size(), 1.0, test::test_seed());
  for (int i = 0; i < 20000; ++i) {
    const std::size_t k = zipf.next();
    ++truth[k];
    sketch.add(cache::Prefetcher::hash("k" + std::to_string(k)));
  }
  ASSERT_EQ(sketch.agings(), 0u) << "note_additions was never called, so no aging";
  for (std::size_t k = 0; k < truth.size(); ++k) {
    const unsigned estimate = sketch.estimate(cache::Prefetcher::hash("k" + std::to_string(k)));
    ASSERT_GE(estimate, std::min(truth[k], cache::FrequencySketch::kMaxCount)) << "key " << k;
  }
  // The hottest key is asked for thousands of times, a tail key a few: the sketch tells them apart.
  EXPECT_GT(sketch.estimate(cache::Prefetcher::hash("k0")),
            sketch.estimate(cache::Prefetcher::hash("k4999")) + 100);
}

TEST(FrequencySketch, AgingHalvesEveryCount) {
  cache::FrequencySketch sketch(100);  // width 1024, aged every 10240 additions
  const auto key = cache::Prefetcher::hash("hot");
  sketch.add(key, 200);
  sketch.note_additions(10 * sketch.width() - 1);
  EXPECT_EQ(sketch.estimate(key), 200u);
  sketch.note_additions(1);
  EXPECT_EQ(sketch.agings(), 1u);
  EXPECT_EQ(sketch.estimate(key), 100u);
  sketch.add(key, 1000);
  EXPECT_EQ(sketch.estimate(key), cache::FrequencySketch::kMaxCount) << "saturates";
}

struct ZipfRun {
  double memory_hit_rate = 0;
  CacheStats stats;
};

// Zipf(1.0) lookups over 20k stored keys, in get_batch calls of 32, on a fresh cache whose memory
// tier holds max_entries: 20k lookups to warm up, then 40k measured.
ZipfRun run_zipf(const std::string& path, std::size_t max_entries, bool prefetching) {
  EmbeddingCache cache(rocksdb_options(path, max_entries, prefetching));
  ZipfKeys zipf(20000, 1.0, test::test_seed());
  Matrix out(32, kDim);
  std::vector<std::string> batch(32);
  const auto lookups = [&](int calls) {
    for (int call = 0; call < calls; ++call) {
      for (auto& key : batch) key = "key" + std::to_string(zipf.next());
      const auto mask = cache.get_batch(batch, out.mutable_view());
      EXPECT_EQ(std::count(mask.begin(), mask.end(), 1), 32) << "every key is stored";
    }
  };
  lookups(625);
  const CacheStats warm = cache.stats();
  lookups(1250);
  ZipfRun run;
  run.stats = cache.stats();
  run.memory_hit_rate = double(run.stats.memory_hits - warm.memory_hits) / 40000.0;
  return run;
}

TEST(Prefetching, ZipfWorkloadOverASmallMemoryTierHitsMoreWithPrefetchingOn) {
  TempDir dir;
  const std::string path = dir.sub("db");
  {
    EmbeddingCache writer(rocksdb_options(path, 0, false));
    const auto keys = make_keys("key", 20000);
    writer.put_batch(keys, matrix_for(keys, 1, kDim).view());
  }
  const ZipfRun off = run_zipf(path, 256, false);
  const ZipfRun on = run_zipf(path, 256, true);
  // Fair to CLOCK too: the memory tier alone given the prefetch set's entries as well.
  const ZipfRun off_same_entries = run_zipf(path, 256 + 1000, false);
  std::cout << "memory hit rate over 40000 Zipf(1.0) lookups of 20000 keys (after 20000 to warm "
               "up): memory tier of 256 "
            << off.memory_hit_rate << ", of 1256 " << off_same_entries.memory_hit_rate
            << "; 256 + prefetch set of 1000 " << on.memory_hit_rate << " (prefetch hits "
            << on.stats.prefetch_hits << ", loads " << on.stats.prefetch_loads << ")\n";
  EXPECT_GT(on.memory_hit_rate, off.memory_hit_rate + 0.10);
  // Frequency beats recency under Zipf: measured +0.045 to +0.06 over CLOCK given the same entries
  // (+0.052 on 2026-12-02 with a build running beside it). The loader runs in the background and
  // lags on a loaded machine, so the test holds a clear +0.02 rather than the whole margin.
  EXPECT_GT(on.memory_hit_rate, off_same_entries.memory_hit_rate + 0.02);

  // True counts: every lookup is a prefetch hit or a prefetch miss, and prefetch hits are memory
  // hits; with prefetching off nothing is counted.
  EXPECT_EQ(on.stats.prefetch_hits + on.stats.prefetch_misses, 60000u);
  EXPECT_LE(on.stats.prefetch_hits, on.stats.memory_hits);
  EXPECT_GT(on.stats.prefetch_hits, 0u);
  EXPECT_LE(on.stats.prefetch_entries, 1000u);
  EXPECT_EQ(on.stats.prefetch_capacity, 1000u);
  EXPECT_EQ(off.stats.prefetch_hits + off.stats.prefetch_misses + off.stats.prefetch_loads, 0u);
}

TEST(Prefetching, WarmLoadsKeysSoTheirGetsArePrefetchHits) {
  TempDir dir;
  const auto keys = make_keys("w", 300);
  {
    EmbeddingCache writer(rocksdb_options(dir.sub("db"), 0, false));
    writer.put_batch(keys, matrix_for(keys, 7, kDim).view());
  }
  EmbeddingCache cache(rocksdb_options(dir.sub("db"), 0, true, 500));
  std::vector<std::string> asked = keys;
  asked.push_back("never-stored");
  EXPECT_EQ(cache.warm(asked).get(), keys.size());
  EXPECT_EQ(cache.stats().prefetch_entries, keys.size());
  EXPECT_EQ(cache.stats().prefetch_loads, keys.size());
  Matrix out(keys.size(), kDim);
  const auto mask = cache.get_batch(keys, out.mutable_view());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(mask[i]);
    ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], 7, kDim)));
  }
  const CacheStats s = cache.stats();
  EXPECT_EQ(s.prefetch_hits, keys.size());
  EXPECT_EQ(s.durable_hits, 0u) << "no get went to RocksDB";
  EXPECT_EQ(s.warm_calls, 1u);
}

TEST(Prefetching, WarmKeepsAtMostTheSetsCapacity) {
  TempDir dir;
  const auto keys = make_keys("w", 100);
  EmbeddingCache cache(rocksdb_options(dir.sub("db"), 0, true, 40));
  cache.put_batch(keys, matrix_for(keys, 1, kDim).view());
  EXPECT_EQ(cache.warm(keys).get(), keys.size());
  EXPECT_EQ(cache.stats().prefetch_entries, 40u);
}

TEST(Prefetching, WritesKeepPrefetchedKeysCurrent) {
  TempDir dir;
  // A memory tier of a few entries: after other puts, only the prefetch set holds "a" and "b".
  EmbeddingCache cache(rocksdb_options(dir.sub("db"), 16, true, 100));
  const std::vector<std::string> keys = {"a", "b"};
  cache.put_batch(keys, matrix_for(keys, 1, kDim).view());
  ASSERT_EQ(cache.warm(keys).get(), 2u);
  cache.put("a", vector_for("a", 2, kDim));
  ASSERT_TRUE(cache.remove("b"));
  const auto filler = make_keys("filler", 200);
  cache.put_batch(filler, matrix_for(filler, 1, kDim).view());

  const CacheStats before = cache.stats();
  std::vector<float> out(kDim);
  ASSERT_TRUE(cache.get("a", out));
  EXPECT_TRUE(row_equals(out.data(), vector_for("a", 2, kDim))) << "the set kept a stale value";
  EXPECT_EQ(cache.stats().prefetch_hits, before.prefetch_hits + 1) << "served by the set";
  EXPECT_FALSE(cache.get("b", out)) << "a removed key came back from the set";
  cache.clear();
  EXPECT_EQ(cache.stats().prefetch_entries, 0u);
  EXPECT_FALSE(cache.get("a", out));
}

TEST(Prefetching, ExpiredPrefetchedKeysAreMissesAndCleanedUp) {
  TempDir dir;
  EmbeddingCache cache(rocksdb_options(dir.sub("db"), 16, true, 100));
  const auto keys = make_keys("t", 10);
  cache.put_batch(keys, matrix_for(keys, 1, kDim).view(), std::chrono::milliseconds(200));
  ASSERT_EQ(cache.warm(keys).get(), keys.size());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<float> out(kDim);
  EXPECT_FALSE(cache.get("t3", out));
  EXPECT_GE(cache.cleanup_expired(), keys.size());
  EXPECT_EQ(cache.stats().prefetch_entries, 0u);
}

TEST(Prefetching, RejectsBadOptions) {
  TempDir dir;
  CacheOptions memory_only;
  memory_only.dim = kDim;
  memory_only.enable_prefetching = true;
  test::expect_error(ErrorCode::InvalidArgument, "enable_prefetching needs a durable store",
                     [&] { EmbeddingCache{memory_only}; });
  test::expect_error(ErrorCode::InvalidArgument, "prefetch_cache_size must be >= 1",
                     [&] { EmbeddingCache(rocksdb_options(dir.sub("db"), 0, true, 0)); });
  EmbeddingCache off(rocksdb_options(dir.sub("db"), 0, false));
  const std::vector<std::string> keys = {"x"};
  test::expect_error(ErrorCode::InvalidArgument, "warm needs enable_prefetching",
                     [&] { off.warm(keys); });
}

TEST(Prefetching, LoadsAheadFromRedis) {
  testing::RedisServerProcess server;
  CacheOptions options;
  options.dim = kDim;
  options.max_entries = 16;
  options.redis = RedisOptions{};
  options.redis->port = server.port();
  options.enable_prefetching = true;
  options.prefetch_cache_size = 64;
  options.resources = std::make_shared<Resources>(ResourcesOptions{.fiber_threads = 1});
  const auto keys = make_keys("r", 64);
  {
    EmbeddingCache writer(options);
    writer.put_batch(keys, matrix_for(keys, 3, kDim).view());
  }
  EmbeddingCache cache(options);  // its memory tier is empty
  EXPECT_EQ(cache.warm(keys).get(), keys.size());
  Matrix out(keys.size(), kDim);
  const auto mask = cache.get_batch_async(keys, out.mutable_view()).get();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(mask[i]);
    ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], 3, kDim)));
  }
  EXPECT_EQ(cache.stats().durable_hits, 0u);
  EXPECT_EQ(cache.stats().prefetch_hits, keys.size());
}

}  // namespace
}  // namespace hetcache
