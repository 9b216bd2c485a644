// The GPU tier where its limits are: a scratch budget too small for all queries at once (the search
// cuts them into blocks and still answers on the GPU), a host row larger than the pinned staging
// buffer (refused, answered by the CPU), half-precision uploads larger than one staging chunk, and
// two threads searching one engine. Each premise that is plain arithmetic is checked on the host;
// the searches need a device (skipped without one, failed with HETCACHE_REQUIRE_GPU=1).
//
// Not here: a sticky device error (the context lost) cannot be caused through the API; what the
// tier does then is checked on the host (search_exit_test.cpp).
#include <hetcache/similarity.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "compute/cuda/tile_plan.hpp"
#include "gpu/require_gpu.hpp"
#include "reference.hpp"

namespace hetcache::test {
namespace {

SimilarityEngine engine_with_budget(std::size_t budget, Precision precision = Precision::F32) {
  SimilarityOptions options;
  options.gpu_precision = precision;
  options.resources =
      std::make_shared<Resources>(ResourcesOptions{.gpu = {.memory_budget_bytes = budget}});
  return SimilarityEngine(options);
}

void expect_all_valid(const Reference& ref, const Hits& hits, std::size_t queries, std::size_t n,
                      std::size_t k, Metric metric) {
  for (std::size_t q = 0; q < queries; ++q) {
    expect_valid_hits(ref, hits, q, n, k, metric);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(GpuLimits, ABudgetTooSmallForAllQueriesCutsThemIntoBlocksAndStillAnswers) {
  constexpr std::size_t kQueries = 600, kRows = 60000, kDim = 16, kK = 100;
  constexpr std::size_t kBudget = std::size_t{8} << 20;  // 6 MiB of scratch after the workspaces
  // The premise: with all 600 queries no tile size fits (the scores of a large tile, or the keys
  // of many small ones, exceed the scratch), so without query blocks this falls back to the CPU.
  gpu::TileShape whole;
  whole.queries = kQueries;
  whole.candidates = kRows;
  whole.dim = kDim;
  whole.kept = kK;
  whole.host = true;
  ASSERT_FALSE(gpu::plan_tiles(whole, kBudget, gpu::kPinnedStagingBytes));

  SimilarityEngine engine = engine_with_budget(kBudget);
  REQUIRE_GPU(engine);
  std::mt19937_64 rng(test_seed());
  const auto queries = random_rows(rng, kQueries, kDim), candidates = random_rows(rng, kRows, kDim);
  for (const Metric metric : {Metric::Dot, Metric::L2}) {
    const Reference ref(queries.view(), candidates.view(), metric, 4.0);
    expect_all_valid(ref, engine.search(queries.view(), candidates.view(), kK, metric, Tier::Gpu),
                     kQueries, kRows, kK, metric);
    const DeviceMatrix resident = engine.upload(candidates.view());
    expect_all_valid(ref, engine.search(queries.view(), resident, kK, metric), kQueries, kRows, kK,
                     metric);
  }
  EXPECT_EQ(engine.gpu_stats().oom_fallbacks, 0u);
  EXPECT_EQ(engine.gpu_stats().searches, 4u);
}

TEST(GpuLimits, AHostRowLargerThanThePinnedBufferRunsOnTheCpu) {
  const std::size_t dim = gpu::kPinnedStagingBytes / sizeof(float) + 1;
  SimilarityEngine engine = engine_with_budget(0);
  REQUIRE_GPU(engine);
  std::mt19937_64 rng(test_seed());
  const auto queries = random_rows(rng, 1, dim), candidates = random_rows(rng, 3, dim);
  const Hits hits = engine.search(queries.view(), candidates.view(), 2, Metric::Dot, Tier::Gpu);
  EXPECT_EQ(engine.gpu_stats().oom_fallbacks, 1u);
  const Reference ref(queries.view(), candidates.view(), Metric::Dot);
  expect_valid_hits(ref, hits, 0, 3, 2, Metric::Dot);
}

TEST(GpuLimits, HalfPrecisionUploadsLargerThanTheStagingChunkConvertEveryRow) {
  // 100k x 256 f32 is 100 MiB: two 64 MiB chunks at the default budget, 17 chunks of the 6 MiB of
  // scratch an 8 MiB budget leaves.
  REQUIRE_GPU(engine_with_budget(0));
  std::mt19937_64 rng(test_seed());
  const auto queries = random_rows(rng, 16, 256), candidates = random_rows(rng, 100'000, 256);
  for (const Precision precision : {Precision::Bf16, Precision::F16}) {
    for (const std::size_t budget : {std::size_t{0}, std::size_t{8} << 20}) {
      SimilarityEngine engine = engine_with_budget(budget, precision);
      REQUIRE_GPU(engine);
      const DeviceMatrix resident = engine.upload(candidates.view());
      const Reference ref(queries.view(), candidates.view(), Metric::Cosine,
                          2.0 + 2.0 * 0x1p-7 / Reference::gamma(256));
      expect_all_valid(ref, engine.search(queries.view(), resident, 10, Metric::Cosine), 16,
                       100'000, 10, Metric::Cosine);
    }
  }
}

TEST(GpuLimits, TwoThreadsSearchingOneEngineBothGetTheirAnswers) {
  SimilarityEngine engine = engine_with_budget(0);
  REQUIRE_GPU(engine);
  std::mt19937_64 rng(test_seed());
  const auto candidates = random_rows(rng, 50'000, 64);
  const DeviceMatrix resident = engine.upload(candidates.view());
  std::vector<TestMatrix> queries;
  for (int t = 0; t < 2; ++t) queries.push_back(random_rows(rng, t == 0 ? 3 : 200, 64));
  std::vector<std::vector<Hits>> answers(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        answers[t].push_back(
            i % 2 == 0
                ? engine.search(queries[t].view(), candidates.view(), 10, Metric::Dot, Tier::Gpu)
                : engine.search(queries[t].view(), resident, 10, Metric::Dot));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 2; ++t) {
    const Reference ref(queries[t].view(), candidates.view(), Metric::Dot, 4.0);
    expect_all_valid(ref, answers[t].front(), queries[t].rows, 50'000, 10, Metric::Dot);
    for (const Hits& h : answers[t]) {  // the same answer every time, host or resident
      for (std::size_t q = 0; q < queries[t].rows; ++q) {
        ASSERT_TRUE(
            std::equal(h.ids(q).begin(), h.ids(q).end(), answers[t].front().ids(q).begin()));
      }
    }
  }
  EXPECT_EQ(engine.gpu_stats().searches, 40u);
}

}  // namespace
}  // namespace hetcache::test
