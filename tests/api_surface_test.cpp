// Public functions and fields that no other test reaches (scripts/api_coverage.sh lists them):
// precision and ISA queries, the engine's default tier, writable Hits, Promise::set_exception,
// an absent GPU tier's statistics, the scheduler's cost breakdown, recalibration, the GPU
// threshold, and Execution::simd counted in the metrics.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <future>

#include "cache/cache_test_util.hpp"

namespace hetcache::test {
namespace {

TEST(ApiSurface, PrecisionAndIsaQueries) {
  EXPECT_EQ(parse_precision("F32"), Precision::F32);
  EXPECT_EQ(parse_precision("tf32"), Precision::Tf32);
  EXPECT_EQ(parse_precision("bf16"), Precision::Bf16);
  EXPECT_EQ(parse_precision("f16"), Precision::F16);
  for (const Precision p : {Precision::F32, Precision::Tf32, Precision::Bf16, Precision::F16})
    EXPECT_EQ(parse_precision(to_string(p)), p);
  expect_error(ErrorCode::InvalidArgument, "fp8", [] { parse_precision("fp8"); });
  const Isa best = best_supported_isa();
  EXPECT_TRUE(isa_supported(best));
  EXPECT_TRUE(isa_supported(Isa::Scalar));
  // Nothing better than `best` is supported.
  if (best == Isa::Scalar) {
    EXPECT_FALSE(isa_supported(Isa::Avx2));
  }
  if (best != Isa::Avx512) {
    EXPECT_FALSE(isa_supported(Isa::Avx512));
  }
  if (std::getenv("HETCACHE_ISA") == nullptr) {
    EXPECT_EQ(default_isa(), best);
  }
  EXPECT_STREQ(to_string(ErrorCode::Corruption), "Corruption");
}

// Hybrid places a similarity under cpu_min_multiply_adds (4M) on the calling thread, more on the
// CPU arena -- the rule an engine call without a tier follows.
TEST(ApiSurface, HybridSplitsSimilarityAtFourMillionMultiplyAdds) {
  SchedulerConfig config;
  config.resources = test::cpu_only_resources();
  Scheduler hybrid(config);
  const auto similarity = [&](std::size_t queries, std::size_t candidates, std::size_t dim) {
    Work w;
    w.op = OpKind::Similarity;
    w.queries = queries;
    w.items = candidates;
    w.dim = dim;
    return hybrid.decide(w).tier;
  };
  EXPECT_EQ(similarity(1, 1000, 768), Tier::Sequential);  // 0.77M
  EXPECT_EQ(similarity(1, 5461, 768), Tier::Sequential);  // just under 2^22
  EXPECT_EQ(similarity(1, 5462, 768), Tier::Cpu);         // just over
  EXPECT_EQ(similarity(64, 100000, 768), Tier::Cpu);
  config.cpu_min_multiply_adds = std::uint64_t{1} << 30;
  Scheduler raised(config);
  Work w;
  w.op = OpKind::Similarity;
  w.queries = 64;
  w.items = 10000;
  w.dim = 768;
  EXPECT_EQ(raised.decide(w).tier, Tier::Sequential) << "the threshold is the knob's";
  config.cpu_min_multiply_adds = 0;
  expect_error(ErrorCode::InvalidArgument, "cpu_min_multiply_adds", [&] { validate(config); });
}

TEST(ApiSurface, HitsAreWritableThroughTheirMutableSpans) {
  Hits hits(2, 3);
  ASSERT_EQ(hits.mutable_scores(1).size(), 3u);
  ASSERT_EQ(hits.mutable_ids(1).size(), 3u);
  hits.mutable_scores(1)[2] = 0.5f;
  hits.mutable_ids(1)[2] = 7;
  hits.mutable_ids(0)[0] = 3;
  EXPECT_EQ(hits.scores(1)[2], 0.5f);
  EXPECT_EQ(hits.ids(1)[2], 7);
  EXPECT_EQ(hits.ids(0)[0], 3);
  EXPECT_EQ(hits.num_queries(), 2u);
  EXPECT_EQ(hits.k(), 3u);
}

TEST(ApiSurface, APromiseFulfilledWithAFunctionCarriesItsResultOrItsException) {
  Promise<int> value;
  auto answer = [] { return 42; };
  value.fulfil_with(answer);
  EXPECT_EQ(value.get_future().get(), 42);
  Promise<void> failure;
  auto fail = [] { throw Error(ErrorCode::StoreUnavailable, "down"); };
  failure.fulfil_with(fail);
  expect_error(ErrorCode::StoreUnavailable, "down", [&] { failure.get_future().get(); });
}

TEST(ApiSurface, APromiseDeliversItsExceptionAndABrokenOneSaysSo) {
  Promise<int> promise;
  Future<int> future = promise.get_future();
  EXPECT_TRUE(future.valid());
  EXPECT_FALSE(future.ready());
  promise.set_exception(std::make_exception_ptr(Error(ErrorCode::StoreUnavailable, "gone")));
  EXPECT_TRUE(future.wait_for(std::chrono::seconds(1)));
  future.wait();
  expect_error(ErrorCode::StoreUnavailable, "gone", [&] { future.get(); });
  EXPECT_FALSE(future.valid());  // after get()
  Future<void> orphan;
  {
    Promise<void> dropped;
    orphan = dropped.get_future();
  }
  EXPECT_TRUE(orphan.ready());
  EXPECT_THROW(orphan.get(), std::future_error);
}

TEST(ApiSurface, AnAbsentGpuTierReportsNothingDone) {
  SimilarityOptions options;
  options.resources = test::cpu_only_resources();
  SimilarityEngine engine(options);
  EXPECT_FALSE(engine.gpu_available());
  const GpuStats stats = engine.gpu_stats();
  EXPECT_FALSE(stats.available);
  EXPECT_TRUE(stats.device.empty());
  EXPECT_NE(stats.reason.find("disabled"), std::string::npos) << stats.reason;
  EXPECT_EQ(stats.searches + stats.oom_fallbacks + stats.tiles + stats.bytes_to_device, 0u);
  const DeviceMatrix none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.device_bytes(), 0u);
  EXPECT_EQ(none.rows(), 0u);
}

SchedulerConfig adaptive_in(const TempDir& dir) {
  SchedulerConfig c;
  c.strategy = Strategy::Adaptive;
  c.calibration_dir = dir.path();
  return c;
}

// Every available tier's prediction is its parts: (overhead + work + transfer) x correction +
// queue + wake-up; only the GPU has a transfer, and none when the data is on the device.
TEST(ApiSurface, APredictionIsTheSumOfItsParts) {
  TempDir dir;
  SchedulerConfig config = adaptive_in(dir);
  config.calibrate = false;
  Scheduler scheduler(config);
  EXPECT_EQ(scheduler.config().strategy, Strategy::Adaptive);
  Work w;
  w.op = OpKind::Similarity;
  w.items = 50000;
  w.queries = 16;
  w.dim = 768;
  const Decision d = scheduler.decide(w);
  int available = 0;
  for (const TierCost& c : d.costs) {
    if (!c.available) continue;
    ++available;
    EXPECT_GT(c.work_us, 0.0) << to_string(c.tier);
    EXPECT_GE(c.overhead_us, 0.0);
    if (c.tier != Tier::Gpu) {
      EXPECT_EQ(c.transfer_us, 0.0) << to_string(c.tier);
    }
    const double parts =
        (c.overhead_us + c.work_us + c.transfer_us) * c.correction + c.queue_us + c.wake_us;
    EXPECT_NEAR(c.predicted_us, parts, 1e-6 * parts) << to_string(c.tier);
  }
  EXPECT_GE(available, 2);
  if (!scheduler.gpu_available()) return;
  const auto gpu_transfer = [&](bool on_device) {
    w.data_on_gpu = on_device;
    for (const TierCost& c : scheduler.decide(w).costs)
      if (c.tier == Tier::Gpu) return c.transfer_us;
    return -1.0;
  };
  EXPECT_GT(gpu_transfer(false), 0.0);
  EXPECT_EQ(gpu_transfer(true), 0.0);
}

TEST(ApiSurface, RecalibrateMeasuresAgainAndRewritesTheFile) {
  TempDir dir;
  Scheduler scheduler(adaptive_in(dir));
  scheduler.recalibrate();
  const std::string file = scheduler.calibration_file();
  ASSERT_TRUE(std::filesystem::exists(file)) << file;
  EXPECT_EQ(file.rfind(dir.path(), 0), 0u) << file;
  const auto first = std::filesystem::last_write_time(file);
  const auto calibrations = scheduler.metrics().calibrations;
  EXPECT_GE(calibrations, 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  scheduler.recalibrate();
  EXPECT_EQ(scheduler.metrics().calibrations, calibrations + 1);
  EXPECT_GT(std::filesystem::last_write_time(file), first);
}

TEST(ApiSurface, GpuThresholdIsCheckedAndNeverPicksAnAbsentGpu) {
  SchedulerConfig config;
  config.gpu_min_multiply_adds = 0;
  expect_error(ErrorCode::InvalidArgument, "gpu_min_multiply_adds must be >= 1",
               [&] { validate(config); });
  config.gpu_min_multiply_adds = 1;  // every similarity is "large"
  config.strategy = Strategy::Hybrid;
  config.resources = test::cpu_only_resources();
  Scheduler hybrid(config);
  Work w;
  w.op = OpKind::Similarity;
  w.items = 1000;
  w.queries = 4;
  w.dim = 32;
  const Decision d = hybrid.decide(w);
  EXPECT_NE(d.tier, Tier::Gpu) << d.reason;
}

// Execution says how an operation really ran; the metrics count SIMD and parallel runs by it.
TEST(ApiSurface, FinishedCountsSimdAndParallelAsTheyRan) {
  TempDir dir;
  SchedulerConfig config = adaptive_in(dir);
  config.calibrate = false;
  Scheduler scheduler(config);
  Work w;
  w.op = OpKind::Similarity;
  w.items = 100;
  w.dim = 8;
  scheduler.finished(scheduler.started(Tier::Cpu), w, Tier::Cpu, std::chrono::microseconds(5),
                     Execution{.parallel = true, .simd = true});
  scheduler.finished(scheduler.started(Tier::Sequential), w, Tier::Sequential,
                     std::chrono::microseconds(5), Execution{.parallel = false, .simd = false});
  const PerformanceMetrics m = scheduler.metrics();
  EXPECT_EQ(m.total_operations, 2u);
  EXPECT_EQ(m.simd_operations, 1u);
  EXPECT_EQ(m.parallel_operations, 1u);
  expect_error(ErrorCode::InvalidArgument, "ticket", [&] {
    scheduler.finished(scheduler.started(Tier::Cpu), w, Tier::Fiber, std::chrono::microseconds(1),
                       Execution{});
  });
}

}  // namespace
}  // namespace hetcache::test
