// The GPU tier. Everywhere: a tier that is absent says why, and asking for it then is a clear
// error while the CPU tiers keep working. Where a CUDA device exists (and this build has CUDA):
// every GPU path -- host-streamed and device-resident candidates, scan (small Q) and GEMM (large
// Q), several tiles, k above 256 and above N, NaN rows and ties, every metric and precision --
// against the float64 reference, and an out-of-memory search falling back to the CPU. Without a
// device those tests skip with the reason; HETCACHE_REQUIRE_GPU=1 turns the skip into a failure
// (the GPU script and the Docker image set it, so a run on a GPU machine cannot pass vacuously).
#include <hetcache/error.hpp>
#include <hetcache/similarity.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <tuple>

#include "gpu/require_gpu.hpp"
#include "reference.hpp"

namespace hetcache::test {
namespace {

TEST(GpuTier, AbsentTierSaysWhyAndTheCpuTiersStillWork) {
  SimilarityEngine engine;
  const GpuStats stats = engine.gpu_stats();
  EXPECT_EQ(stats.available, engine.gpu_available());
  std::mt19937_64 rng(test_seed());
  const auto q = random_rows(rng, 2, 16), c = random_rows(rng, 50, 16);
  if (stats.available) {
    EXPECT_FALSE(stats.device.empty());
    EXPECT_TRUE(stats.reason.empty());
  } else {
    EXPECT_FALSE(stats.reason.empty());
    try {
      engine.search(q.view(), c.view(), 5, Metric::Dot, Tier::Gpu);
      FAIL() << "Tier::Gpu without a GPU must throw";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::Unsupported);
      EXPECT_NE(std::string(e.what()).find(stats.reason), std::string::npos) << e.what();
    }
    EXPECT_THROW(engine.upload(c.view()), Error);
  }
  EXPECT_EQ(engine.search(q.view(), c.view(), 5, Metric::Dot).k(), 5u);  // the CPU answers
  // The GPU tier does top-k search only.
  EXPECT_THROW(engine.scores(q.view(), c.view(), Metric::Dot, Tier::Gpu), Error);
}

TEST(GpuTier, DisabledByItsOptions) {
  SimilarityOptions options;
  options.resources = std::make_shared<Resources>(ResourcesOptions{.gpu = {.enable = false}});
  SimilarityEngine engine(options);
  EXPECT_FALSE(engine.gpu_available());
  EXPECT_NE(engine.gpu_stats().reason.find("disabled"), std::string::npos);
}

TEST(GpuTier, DeviceMatrixMisuseIsAClearError) {
  SimilarityEngine engine;
  std::mt19937_64 rng(test_seed());
  const auto q = random_rows(rng, 2, 16);
  EXPECT_THROW(engine.search(q.view(), DeviceMatrix{}, 3, Metric::Dot), Error);
  REQUIRE_GPU(engine);
  const auto c = random_rows(rng, 100, 8);
  const DeviceMatrix set = engine.upload(c.view());
  EXPECT_EQ(set.rows(), 100u);
  EXPECT_EQ(set.dim(), 8u);
  try {
    engine.search(q.view(), set, 3, Metric::Dot);
    FAIL() << "dimension mismatch must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::DimensionMismatch);
  }
}

// How much wider than the CPU bound each precision's error may be: f32 sums in cuBLAS's order
// (up to dim terms per partial sum instead of dim / 8); TF32 / bf16 / f16 round their inputs to
// 10 / 7 / 10 mantissa bits first.
double bound_scale(Precision precision, std::size_t dim) {
  const double f32 = (static_cast<double>(dim) + 10.0) / (static_cast<double>(dim) / 8.0 + 10.0);
  const double input_rounding = precision == Precision::Bf16 ? 0x1p-7
                                : precision == Precision::Tf32 || precision == Precision::F16
                                    ? 0x1p-10
                                    : 0.0;
  return f32 + 2.0 * input_rounding / Reference::gamma(dim);
}

struct Shape {
  std::size_t queries, candidates, dim, k;
};

using Case = std::tuple<Metric, Precision, Shape>;

class GpuSearch : public ::testing::TestWithParam<Case> {};

TEST_P(GpuSearch, HostAndDeviceResidentMatchTheReference) {
  const auto [metric, precision, shape] = GetParam();
  SimilarityOptions options;
  options.gpu_precision = precision;
  options.resources = std::make_shared<Resources>();  // counters of this case only
  SimilarityEngine engine(options);
  REQUIRE_GPU(engine);
  std::mt19937_64 rng(test_seed());
  const auto queries = random_rows(rng, shape.queries, shape.dim, /*pad=*/3);
  auto candidates = random_rows(rng, shape.candidates, shape.dim, /*pad=*/5);
  // Ties (a row repeated) and a NaN row, when there is room.
  if (shape.candidates > 10) {
    for (std::size_t j = 0; j < shape.dim; ++j) candidates.row(7)[j] = candidates.row(3)[j];
    candidates.row(9)[0] = std::numeric_limits<float>::quiet_NaN();
  }
  const Reference ref(queries.view(), candidates.view(), metric, bound_scale(precision, shape.dim));

  const Hits streamed =
      engine.search(queries.view(), candidates.view(), shape.k, metric, Tier::Gpu);
  for (std::size_t q = 0; q < shape.queries; ++q) {
    expect_valid_hits(ref, streamed, q, shape.candidates, shape.k, metric);
    if (::testing::Test::HasFatalFailure()) return;
  }
  const DeviceMatrix resident = engine.upload(candidates.view());
  EXPECT_EQ(resident.precision(), precision);
  const Hits from_device = engine.search(queries.view(), resident, shape.k, metric);
  for (std::size_t q = 0; q < shape.queries; ++q) {
    expect_valid_hits(ref, from_device, q, shape.candidates, shape.k, metric);
    if (::testing::Test::HasFatalFailure()) return;
  }
  const GpuStats stats = engine.gpu_stats();
  EXPECT_EQ(stats.searches, 2u);
  EXPECT_EQ(stats.oom_fallbacks, 0u);
  EXPECT_GE(stats.tiles, 2u);
}

INSTANTIATE_TEST_SUITE_P(
    Paths, GpuSearch,
    ::testing::Combine(::testing::Values(Metric::Dot, Metric::Cosine, Metric::L2),
                       ::testing::Values(Precision::F32, Precision::Tf32, Precision::Bf16,
                                         Precision::F16),
                       ::testing::Values(Shape{1, 1000, 32, 10},      // scan, one tile
                                         Shape{3, 600000, 64, 300},   // scan, 3 tiles, k > 256
                                         Shape{40, 70000, 96, 1000},  // GEMM, 2 tiles
                                         Shape{20, 50, 16, 100},      // GEMM, k > N
                                         // scan, 3 tiles in chunks, queue select at its largest k
                                         Shape{2, 560000, 48, 256},
                                         Shape{96, 70000, 40, 17},  // GEMM, queue select
                                         // host tiles of 2048 rows (32 MiB of pinned staging);
                                         // 64 KiB of queries: past the scan's shared memory
                                         Shape{4, 12000, 4096, 10},
                                         Shape{8, 30000, 768, 10},    // scan, 3 host tiles
                                         Shape{64, 20000, 33, 300},   // GEMM, k > 256, odd dim
                                         Shape{5, 3000, 771, 20})),   // scan, odd dim
    [](const auto& param_info) {
      const Shape s = std::get<2>(param_info.param);
      return std::string(to_string(std::get<0>(param_info.param))) + "_" +
             std::string(to_string(std::get<1>(param_info.param))) + "_Q" +
             std::to_string(s.queries) + "_N" + std::to_string(s.candidates) + "_k" +
             std::to_string(s.k);
    });

TEST(GpuTier, OutOfDeviceMemoryFallsBackToTheCpuAndIsCounted) {
  SimilarityOptions options;
  // Far too little for 64 queries x 20000 candidates.
  options.resources =
      std::make_shared<Resources>(ResourcesOptions{.gpu = {.memory_budget_bytes = 64 << 10}});
  SimilarityEngine engine(options);
  REQUIRE_GPU(engine);
  std::mt19937_64 rng(test_seed());
  const auto queries = random_rows(rng, 64, 32), candidates = random_rows(rng, 20000, 32);
  const Hits hits = engine.search(queries.view(), candidates.view(), 10, Metric::Dot, Tier::Gpu);
  EXPECT_EQ(engine.gpu_stats().oom_fallbacks, 1u);
  EXPECT_EQ(engine.gpu_stats().searches, 0u);
  const Reference ref(queries.view(), candidates.view(), Metric::Dot);
  for (std::size_t q = 0; q < 64; ++q) expect_valid_hits(ref, hits, q, 20000, 10, Metric::Dot);
}

}  // namespace
}  // namespace hetcache::test
