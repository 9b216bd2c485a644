// One set of resources, one placement point: an engine, a cache and a scheduler built on one
// Resources share its one CPU arena and its one GPU context; a cache places every operation by the
// strategy in its options (what ran where is in its metrics) and gives the same answers on every
// tier.
#include <hetcache/detail/resource_counts.hpp>
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <random>

#include "cache/cache_test_util.hpp"

namespace hetcache::test {
namespace {

constexpr std::size_t kDim = 64, kKeys = 500;

std::uint64_t ran_on(const PerformanceMetrics& m, Tier tier) {
  return m.tiers[static_cast<std::size_t>(tier)].operations;
}

TEST(Resources, OneSetMakesOneArenaAndOneGpuContextForEverythingOnIt) {
  const detail::ResourceCounts before = detail::resource_counts();
  auto resources = std::make_shared<Resources>(ResourcesOptions{.cpu_threads = 2});
  SimilarityOptions engine_options;
  engine_options.resources = resources;
  SimilarityEngine engine(engine_options);
  CacheOptions cache_options;
  cache_options.dim = kDim;
  cache_options.resources = resources;
  cache_options.scheduler.strategy = Strategy::CpuOnly;
  EmbeddingCache cache(cache_options);
  SchedulerConfig config;
  config.strategy = Strategy::CpuOnly;
  config.resources = resources;
  Scheduler scheduler(config);

  // Work on every one of them, on the arena and asking for the GPU.
  const auto keys = make_keys("k", kKeys);
  const Matrix values = matrix_for(keys, 1, kDim);
  cache.put_batch(keys, values.view());
  Matrix out(kKeys, kDim);
  EXPECT_EQ(cache.get_batch(keys, out.mutable_view()), std::vector<std::uint8_t>(kKeys, 1));
  (void)cache.search(values.view().slice(0, 8), 5);
  (void)engine.search(values.view().slice(0, 8), values.view(), 5, Metric::Dot, Tier::Cpu);
  (void)scheduler.search(values.view().slice(0, 8), values.view(), 5);
  (void)engine.gpu_available();
  (void)scheduler.gpu_available();

  const detail::ResourceCounts after = detail::resource_counts();
  EXPECT_EQ(after.cpu_arenas - before.cpu_arenas, 1u) << "one Resources, one TBB arena";
  EXPECT_EQ(after.gpu_tiers - before.gpu_tiers, 1u) << "one Resources, one GPU context";
  EXPECT_EQ(engine.cpu_threads(), 2u);
  EXPECT_EQ(scheduler.engine().cpu_threads(), 2u);
  EXPECT_EQ(cache.resources(), resources);
  EXPECT_EQ(engine.resources(), resources);
  EXPECT_GE(ran_on(cache.metrics(), Tier::Cpu), 3u);
}

// Opening CUDA costs a few hundred ms and device memory: a cache (which owns a scheduler) that
// never has work for the GPU never opens the context.
TEST(Resources, TheGpuContextOpensOnlyForWorkThatCouldRunThere) {
  const detail::ResourceCounts before = detail::resource_counts();
  auto resources = std::make_shared<Resources>(ResourcesOptions{.cpu_threads = 2});
  CacheOptions options;
  options.dim = kDim;
  options.resources = resources;
  EmbeddingCache cache(options);  // Hybrid; no device mirror, so no search can go to the GPU
  const auto keys = make_keys("k", kKeys);
  const Matrix values = matrix_for(keys, 2, kDim);
  cache.put_batch(keys, values.view());
  Matrix out(kKeys, kDim);
  (void)cache.get_batch(keys, out.mutable_view());
  (void)cache.search(values.view().slice(0, 4), 5);
  EXPECT_EQ(detail::resource_counts().gpu_tiers - before.gpu_tiers, 0u);
  SchedulerConfig config;
  config.resources = resources;
  Scheduler scheduler(config);
  EXPECT_EQ(detail::resource_counts().gpu_tiers - before.gpu_tiers, 0u)
      << "making a scheduler opens nothing";
  (void)scheduler.search(values.view().slice(0, 4), values.view(), 5);
  EXPECT_EQ(detail::resource_counts().gpu_tiers - before.gpu_tiers, 1u)
      << "a similarity that could run on the GPU asks for it";
}

TEST(Resources, ACacheGivenTwoDifferentSetsIsAnError) {
  CacheOptions options;
  options.dim = kDim;
  options.resources = resources_with_cpu_threads(1);
  options.scheduler.resources = resources_with_cpu_threads(2);
  expect_error(ErrorCode::InvalidArgument, "scheduler.resources",
               [&] { EmbeddingCache cache(options); });
  options.scheduler.resources = options.resources;
  EXPECT_NO_THROW(EmbeddingCache cache(options));
}

struct Expected {
  Tier get, get_batch, put_batch, search, similarity;
};

// Each strategy's placement of the cache's calls; the answers are the same everywhere.
TEST(CachePlacement, EveryOperationIsPlacedByTheCachesStrategy) {
  TempDir dir;
  const std::vector<std::pair<Strategy, Expected>> cases = {
      // I/O on fibers; compute (puts, search, scoring) on the calling thread.
      {Strategy::FiberOnly,
       {Tier::Fiber, Tier::Fiber, Tier::Sequential, Tier::Sequential, Tier::Sequential}},
      {Strategy::CpuOnly, {Tier::Cpu, Tier::Cpu, Tier::Cpu, Tier::Cpu, Tier::Cpu}},
      // No device copy of the cache (search_on_gpu is off): cpu-only.
      {Strategy::GpuOnly, {Tier::Cpu, Tier::Cpu, Tier::Cpu, Tier::Cpu, Tier::Cpu}},
      // One key sequential; 500 keys: get_batch >= 20 on fibers, put_batch < 2^20 here;
      // 8 x 500 x 64 multiply-adds < 4M on the calling thread.
      {Strategy::Hybrid,
       {Tier::Sequential, Tier::Fiber, Tier::Sequential, Tier::Sequential, Tier::Sequential}},
  };
  const auto keys = make_keys("k", kKeys);
  const Matrix values = matrix_for(keys, 3, kDim);
  const MatrixView queries = values.view().slice(0, 8);
  std::vector<std::vector<KeyHit>> first_hits;
  for (const auto& [strategy, expected] : cases) {
    SCOPED_TRACE(std::string(to_string(strategy)));
    CacheOptions options;
    options.dim = kDim;
    options.resources = cpu_only_resources();
    options.scheduler.strategy = strategy;
    options.scheduler.calibration_dir = dir.path();
    EmbeddingCache cache(options);
    cache.put_batch(keys, values.view());
    Matrix out(kKeys, kDim);
    EXPECT_EQ(cache.get_batch(keys, out.mutable_view()), std::vector<std::uint8_t>(kKeys, 1));
    for (std::size_t i = 0; i < kKeys; i += 37)
      EXPECT_TRUE(row_equals(out.row(i), vector_for(keys[i], 3, kDim)));
    EXPECT_TRUE(cache.get(keys[7]).has_value());
    const auto hits = cache.search(queries, 5);
    if (first_hits.empty()) first_hits = hits;
    EXPECT_EQ(hits.size(), first_hits.size());
    for (std::size_t q = 0; q < hits.size(); ++q) {
      ASSERT_EQ(hits[q].size(), 5u);
      for (std::size_t h = 0; h < 5; ++h) EXPECT_EQ(hits[q][h].key, first_hits[q][h].key);
    }
    const auto scored = cache.similarity(std::span(values.row(0), kDim), keys);
    EXPECT_EQ(scored.found, std::vector<std::uint8_t>(kKeys, 1));

    const PerformanceMetrics m = cache.metrics();
    EXPECT_EQ(m.total_operations, 5u);
    std::array<std::uint64_t, kAllTiers.size()> want{};
    for (const Tier t : {expected.get, expected.get_batch, expected.put_batch, expected.search,
                         expected.similarity})
      ++want[static_cast<std::size_t>(t)];
    for (const Tier t : kAllTiers) {
      EXPECT_EQ(ran_on(m, t), want[static_cast<std::size_t>(t)]) << to_string(t);
      EXPECT_EQ(m.tiers[static_cast<std::size_t>(t)].decisions, want[static_cast<std::size_t>(t)])
          << to_string(t);
    }
  }
}

TEST(CachePlacement, AsyncFormsArePlacedToo) {
  const auto keys = make_keys("k", kKeys);
  const Matrix values = matrix_for(keys, 4, kDim);
  for (const auto& [strategy, tier] :
       {std::pair{Strategy::CpuOnly, Tier::Cpu}, std::pair{Strategy::FiberOnly, Tier::Fiber}}) {
    SCOPED_TRACE(std::string(to_string(strategy)));
    CacheOptions options;
    options.dim = kDim;
    options.resources = cpu_only_resources();
    options.scheduler.strategy = strategy;
    EmbeddingCache cache(options);
    cache.put_batch_async(keys, values.view()).get();
    Matrix out(kKeys, kDim);
    EXPECT_EQ(cache.get_batch_async(keys, out.mutable_view()).get(),
              std::vector<std::uint8_t>(kKeys, 1));
    const EmbedFn never = [](std::span<const std::string>) -> Matrix {
      throw std::logic_error("every key is cached");
    };
    EXPECT_EQ(cache.get_or_compute_async(keys, out.mutable_view(), never).get(), 0u);
    const PerformanceMetrics m = cache.metrics();
    // put_batch is compute: fibers never run it (FiberOnly puts it on the calling thread).
    EXPECT_EQ(ran_on(m, tier), strategy == Strategy::CpuOnly ? 3u : 2u);
    EXPECT_EQ(m.total_operations, 3u);
  }
}

TEST(CachePlacement, ANamedTierOverridesTheStrategyAndAGpuSearchNeedsTheMirror) {
  CacheOptions options;
  options.dim = kDim;
  options.resources = cpu_only_resources();
  options.scheduler.strategy = Strategy::FiberOnly;
  EmbeddingCache cache(options);
  const auto keys = make_keys("k", kKeys);
  const Matrix values = matrix_for(keys, 5, kDim);
  cache.put_batch(keys, values.view(), std::nullopt, Tier::Cpu);
  Matrix out(kKeys, kDim);
  (void)cache.get_batch(keys, out.mutable_view(), Tier::Sequential);
  const auto parallel = cache.search(values.view().slice(0, 3), 4, Metric::L2, Tier::Cpu);
  const auto here = cache.search(values.view().slice(0, 3), 4, Metric::L2, Tier::Sequential);
  for (std::size_t q = 0; q < 3; ++q) {
    ASSERT_EQ(parallel[q].size(), 4u);
    for (std::size_t h = 0; h < 4; ++h) EXPECT_EQ(parallel[q][h].key, here[q][h].key);
    EXPECT_EQ(parallel[q][0].key, keys[q]) << "a vector is its own nearest neighbour";
  }
  const PerformanceMetrics m = cache.metrics();
  EXPECT_EQ(ran_on(m, Tier::Cpu), 2u);
  EXPECT_EQ(ran_on(m, Tier::Sequential), 2u);
  EXPECT_EQ(ran_on(m, Tier::Fiber), 0u);
  std::uint64_t decisions = 0;
  for (const TierMetrics& t : m.tiers) decisions += t.decisions;
  EXPECT_EQ(decisions, 0u) << "a named tier is not a decision";
  expect_error(ErrorCode::Unsupported, "search_on_gpu",
               [&] { (void)cache.search(values.view().slice(0, 1), 4, Metric::L2, Tier::Gpu); });
  expect_error(ErrorCode::Unsupported, "not gpu",
               [&] { (void)cache.get_batch(keys, out.mutable_view(), Tier::Gpu); });
}

// A Similarity without a device copy is never placed on the GPU, by any strategy.
TEST(CachePlacement, HostOnlyWorkNeverGoesToTheGpu) {
  TempDir dir;
  for (const Strategy strategy : {Strategy::GpuOnly, Strategy::Hybrid, Strategy::Adaptive}) {
    SchedulerConfig config;
    config.strategy = strategy;
    config.calibrate = false;
    config.calibration_dir = dir.path();
    config.gpu_min_multiply_adds = 1;
    config.resources = cpu_only_resources();
    Scheduler scheduler(config);
    Work w;
    w.op = OpKind::Similarity;
    w.items = 1000000;
    w.queries = 256;
    w.dim = 768;
    w.host_only = true;
    const Decision d = scheduler.decide(w);
    EXPECT_NE(d.tier, Tier::Gpu) << d.reason;
    EXPECT_FALSE(d.costs[static_cast<std::size_t>(Tier::Gpu)].available);
  }
}

}  // namespace
}  // namespace hetcache::test
