// EmbeddingCache::search with CacheOptions::search_on_gpu: the memory tier mirrored on the device.
// Everywhere: without a GPU the option changes nothing (the CPU answers, no GPU search counted).
// On a device: through puts, overwrites, removes, evictions, expiry and clear, the mirrored search
// gives the CPU search's hits, and only the slabs that writes changed are uploaded again.
#include <hetcache/cache.hpp>
#include <hetcache/similarity.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "gpu/require_gpu.hpp"
#include "reference.hpp"

namespace hetcache::test {
namespace {

constexpr std::size_t kDim = 32;

CacheOptions cache_options(bool on_gpu, bool gpu_enabled) {
  CacheOptions options;
  options.dim = kDim;
  options.max_entries = 3000;  // 16 shards of one slab each: evictions once it is full
  options.search_on_gpu = on_gpu;
  options.resources = gpu_enabled
                          ? Resources::shared()
                          : std::make_shared<Resources>(ResourcesOptions{.gpu = {.enable = false}});
  return options;
}

std::vector<std::string> keys_for(std::size_t first, std::size_t n) {
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < n; ++i) keys.push_back("key-" + std::to_string(first + i));
  return keys;
}

// The same hits, up to rounding: scores agree position by position, and a key only one side has
// scores within rounding of the last hit (a near-tie at the cut).
void expect_same_hits(const std::vector<std::vector<KeyHit>>& got,
                      const std::vector<std::vector<KeyHit>>& want, const std::string& where) {
  ASSERT_EQ(got.size(), want.size()) << where;
  for (std::size_t q = 0; q < got.size(); ++q) {
    ASSERT_EQ(got[q].size(), want[q].size()) << where << " query " << q;
    std::unordered_set<std::string> want_keys;
    for (const auto& hit : want[q]) want_keys.insert(hit.key);
    for (std::size_t i = 0; i < got[q].size(); ++i) {
      const double tol = 1e-4 * (1.0 + std::abs(want[q][i].score));
      ASSERT_NEAR(got[q][i].score, want[q][i].score, tol)
          << where << " query " << q << " hit " << i;
      if (!want_keys.contains(got[q][i].key)) {
        ASSERT_NEAR(got[q][i].score, want[q].back().score, tol)
            << where << ": " << got[q][i].key << " is not a CPU hit and not at the cut";
      }
    }
  }
}

TEST(CacheSearchOnGpu, WithoutAGpuTheCpuAnswers) {
  std::mt19937_64 rng(test_seed());
  EmbeddingCache on(cache_options(true, false)), off(cache_options(false, false));
  const auto rows = random_rows(rng, 500, kDim);
  on.put_batch(keys_for(0, 500), rows.view());
  off.put_batch(keys_for(0, 500), rows.view());
  const auto queries = random_rows(rng, 3, kDim);
  for (const Metric metric : {Metric::Dot, Metric::Cosine, Metric::L2}) {
    const auto got = on.search(queries.view(), 20, metric);
    const auto want = off.search(queries.view(), 20, metric);
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t q = 0; q < got.size(); ++q) {
      ASSERT_EQ(got[q].size(), 20u);
      for (std::size_t i = 0; i < got[q].size(); ++i) {
        EXPECT_EQ(got[q][i].key, want[q][i].key);
        EXPECT_EQ(got[q][i].score, want[q][i].score);
      }
    }
  }
  EXPECT_EQ(on.stats().gpu_searches, 0u);
  EXPECT_EQ(on.stats().gpu_slab_uploads, 0u);
}

TEST(CacheSearchOnGpu, MirrorFollowsEveryWriteAndUploadsOnlyChangedSlabs) {
  SimilarityEngine probe;
  REQUIRE_GPU(probe);
  std::mt19937_64 rng(test_seed());
  // GpuOnly: these searches are far below any size Hybrid or Adaptive would send to the GPU. The
  // reference is the same cache searched on the Cpu tier: a second cache fed the same writes
  // need not evict the same keys (a put_batch's chunks reach a shard in any order).
  CacheOptions options = cache_options(true, true);
  options.scheduler.strategy = Strategy::GpuOnly;
  EmbeddingCache gpu(options);
  const auto queries = random_rows(rng, 4, kDim);
  std::size_t searches = 0;
  const auto compare = [&](const std::string& where) {
    for (const Metric metric : {Metric::Dot, Metric::Cosine, Metric::L2}) {
      for (const std::size_t k : {1, 10, 300, 5000}) {  // 300: radix select; 5000: more than live
        expect_same_hits(gpu.search(queries.view(), k, metric),
                         gpu.search(queries.view(), k, metric, Tier::Cpu),
                         where + " k " + std::to_string(k));
        ++searches;
      }
    }
    ASSERT_EQ(gpu.stats().gpu_searches, searches) << where;
  };
  const auto put = [&](std::size_t first, std::size_t n, Ttl ttl = std::nullopt) {
    gpu.put_batch(keys_for(first, n), random_rows(rng, n, kDim).view(), ttl);
  };

  put(0, 2000);
  compare("after 2000 puts");
  const std::uint64_t uploads = gpu.stats().gpu_slab_uploads;
  EXPECT_GT(uploads, 0u);
  compare("again, nothing written");
  EXPECT_EQ(gpu.stats().gpu_slab_uploads, uploads) << "no write, no upload";
  put(5, 1);  // an overwrite: one row of one slab
  compare("after one overwrite");
  EXPECT_EQ(gpu.stats().gpu_slab_uploads, uploads + 1) << "one changed slab, one upload";

  for (const auto& key : keys_for(100, 300)) gpu.remove(key);
  compare("after 300 removes");
  put(10000, 2500);  // fills the store: CLOCK evicts
  EXPECT_GT(gpu.stats().evictions, 0u);
  compare("after evictions");
  put(20000, 200, std::chrono::milliseconds(30));
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  compare("with 200 expired entries");
  gpu.clear();
  compare("after clear");
  put(30000, 700);
  compare("refilled after clear");
}

}  // namespace
}  // namespace hetcache::test
