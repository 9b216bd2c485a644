// The scheduler: config validation, every strategy's rule, the calibration cache (reused on the
// same machine, measured again for another machine key or a damaged file), online correction
// moving an Adaptive decision away from a tier that got slow (idle tiers: idle_tiers_test.cpp),
// the metrics' arithmetic, their
// Prometheus and JSON forms read back, and scheduled operations giving the unscheduled results.
#include <hetcache/error.hpp>
#include <hetcache/scheduler.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cache/cache_test_util.hpp"
#include "reference.hpp"
#include "scheduler/scheduler_test_util.hpp"

namespace hetcache::test {
namespace {

void expect_invalid(const SchedulerConfig& c, const std::string& names) {
  try {
    validate(c);
    FAIL() << "accepted a bad " << names;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find(names), std::string::npos) << e.what();
  }
  EXPECT_THROW(Scheduler{c}, Error) << names;
}

TEST(SchedulerConfig, DefaultsAreTheSeedsAndBadKnobsAreClearErrors) {
  const SchedulerConfig defaults;
  EXPECT_EQ(defaults.strategy, Strategy::Hybrid);
  EXPECT_TRUE(defaults.enable_simd);
  EXPECT_EQ(defaults.cpu_intensive_threshold, std::size_t{1} << 20);
  EXPECT_EQ(defaults.io_intensive_threshold, 20u);
  EXPECT_EQ(defaults.optimal_batch_size, 64u);
  EXPECT_EQ(defaults.cpu_min_multiply_adds, std::uint64_t{1} << 22);
  EXPECT_NO_THROW(validate(defaults));

  SchedulerConfig c;
  c.optimal_batch_size = 0;
  expect_invalid(c, "optimal_batch_size");
  c = {};
  c.cpu_intensive_threshold = 0;
  expect_invalid(c, "cpu_intensive_threshold");
  c = {};
  c.io_intensive_threshold = 5;  // below the sequential cut
  expect_invalid(c, "io_intensive_threshold");
  c = {};
  c.cpu_intensive_threshold = std::size_t{1} << 40;
  expect_invalid(c, "cpu_intensive_threshold");
  c = {};
  c.cpu_min_multiply_adds = 0;
  expect_invalid(c, "cpu_min_multiply_adds");
}

TEST(ResourcesOptions, BadThreadCountsAndDevicesAreClearErrors) {
  expect_error(ErrorCode::InvalidArgument, "cpu_threads",
               [] { Resources r(ResourcesOptions{.cpu_threads = 100000}); });
  expect_error(ErrorCode::InvalidArgument, "gpu.device",
               [] { Resources r(ResourcesOptions{.gpu = {.device = -1}}); });
  expect_error(ErrorCode::InvalidArgument, "io_threads",
               [] { Resources r(ResourcesOptions{.io_threads = 0}); });
}

TEST(SchedulerConfig, StrategyNamesRoundTrip) {
  for (const Strategy s : {Strategy::FiberOnly, Strategy::CpuOnly, Strategy::GpuOnly,
                           Strategy::Hybrid, Strategy::Adaptive})
    EXPECT_EQ(parse_strategy(to_string(s)), s);
  EXPECT_EQ(parse_strategy("CPU_ONLY"), Strategy::CpuOnly);
  EXPECT_THROW(parse_strategy("tokio"), Error);
  EXPECT_TRUE(is_io(OpKind::Get));
  EXPECT_TRUE(is_io(OpKind::GetBatch));
  EXPECT_FALSE(is_io(OpKind::Put));
  EXPECT_FALSE(is_io(OpKind::PutBatch));
  EXPECT_FALSE(is_io(OpKind::Similarity));
}

TEST(SchedulerStrategies, HybridFollowsTheSeedsRule) {
  TempDir dir;
  Scheduler s(uncalibrated(Strategy::Hybrid, dir));
  EXPECT_EQ(s.decide(work(OpKind::Get, 1)).tier, Tier::Sequential);
  EXPECT_EQ(s.decide(work(OpKind::GetBatch, 9)).tier, Tier::Sequential);
  EXPECT_EQ(s.decide(work(OpKind::GetBatch, 10)).tier,
            Tier::Fiber);  // below io_intensive_threshold: still fibers
  EXPECT_EQ(s.decide(work(OpKind::GetBatch, 20)).tier, Tier::Fiber);
  EXPECT_EQ(s.decide(work(OpKind::GetBatch, 10000)).tier, Tier::Fiber);
  EXPECT_EQ(s.decide(work(OpKind::Put, 1)).tier, Tier::Sequential);
  EXPECT_EQ(s.decide(work(OpKind::PutBatch, (std::size_t{1} << 20) - 1)).tier, Tier::Sequential);
  EXPECT_EQ(s.decide(work(OpKind::PutBatch, std::size_t{1} << 20)).tier, Tier::Cpu);
  EXPECT_EQ(s.decide(work(OpKind::Similarity, 50)).tier, Tier::Sequential);
  const Decision big = s.decide(work(OpKind::Similarity, 1000000, 256, 768));
  EXPECT_EQ(big.tier, Tier::Cpu) << "no GPU here: very large compute stays on the CPU";
  EXPECT_NE(big.reason.find("cpu_min_multiply_adds"), std::string::npos) << big.reason;
  ASSERT_EQ(big.costs.size(), 4u);
  EXPECT_FALSE(big.costs[static_cast<int>(Tier::Fiber)].available);
  EXPECT_FALSE(big.costs[static_cast<int>(Tier::Gpu)].available);
  EXPECT_TRUE(big.costs[static_cast<int>(Tier::Cpu)].available);
  EXPECT_GT(big.costs[static_cast<int>(Tier::Cpu)].predicted_us, 0.0);
  EXPECT_NE(big.explain().find("unavailable"), std::string::npos);

  SchedulerConfig custom = uncalibrated(Strategy::Hybrid, dir);
  custom.io_intensive_threshold = 500;
  custom.cpu_intensive_threshold = 10;
  Scheduler t(custom);
  EXPECT_EQ(t.decide(work(OpKind::PutBatch, 10)).tier, Tier::Cpu);
  EXPECT_EQ(t.decide(work(OpKind::GetBatch, 499)).tier, Tier::Fiber);
}

TEST(SchedulerStrategies, FixedStrategiesAndGpuOnlyWithoutAGpu) {
  TempDir dir;
  Scheduler fiber(uncalibrated(Strategy::FiberOnly, dir));
  EXPECT_EQ(fiber.decide(work(OpKind::GetBatch, 3)).tier, Tier::Fiber);
  const Decision compute = fiber.decide(work(OpKind::Similarity, 5000));
  EXPECT_EQ(compute.tier, Tier::Sequential);
  EXPECT_NE(compute.reason.find("fibers run I/O only"), std::string::npos) << compute.reason;

  Scheduler cpu(uncalibrated(Strategy::CpuOnly, dir));
  for (const OpKind op : {OpKind::Get, OpKind::GetBatch, OpKind::Put, OpKind::Similarity})
    EXPECT_EQ(cpu.decide(work(op, 7)).tier, Tier::Cpu);

  Scheduler gpu(uncalibrated(Strategy::GpuOnly, dir));  // its GPU is disabled by the config
  EXPECT_FALSE(gpu.gpu_available());
  const Decision d = gpu.decide(work(OpKind::Similarity, 100000, 16, 128));
  EXPECT_EQ(d.tier, Tier::Cpu);
  EXPECT_NE(d.reason.find("falls back to cpu-only"), std::string::npos) << d.reason;
  EXPECT_EQ(gpu.decide(work(OpKind::GetBatch, 100)).tier, Tier::Cpu);

  EXPECT_THROW(cpu.decide(work(OpKind::GetBatch, 0)), Error);
  EXPECT_THROW(cpu.decide(work(OpKind::Similarity, 10, 1, 0)), Error);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(SchedulerCalibration, MeasuredOnceThenReusedAndMeasuredAgainForAnotherMachine) {
  TempDir dir;
  SchedulerConfig c;
  c.strategy = Strategy::Adaptive;
  c.calibration_dir = dir.path();
  c.resources = cpu_only_resources();
  const Work w = work(OpKind::Similarity, 2000, 4, 128);

  Scheduler first(c);
  const auto start = std::chrono::steady_clock::now();
  (void)first.decide(w);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(first.metrics().calibrations, 1u);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) && defined(NDEBUG)
  EXPECT_LT(seconds, 2.0) << "the calibration micro-benchmark must stay under 2 s";
#else
  (void)seconds;  // sanitizers slow the micro-benchmark down many times
#endif
  const std::string file = first.calibration_file();
  ASSERT_TRUE(std::filesystem::exists(file)) << file;
  const std::string text = read_file(file);
  EXPECT_NE(text.find("machine " + first.machine_key()), std::string::npos);

  Scheduler second(c);  // same machine: the file is reused, nothing is measured
  const Decision reused = second.decide(w);
  EXPECT_EQ(second.metrics().calibrations, 0u);
  const Decision original = first.decide(w);
  for (std::size_t i = 0; i < reused.costs.size(); ++i)
    EXPECT_DOUBLE_EQ(reused.costs[i].predicted_us, original.costs[i].predicted_us) << i;

  // The same file naming another machine (as if copied from elsewhere): measured again.
  {
    std::string other = text;
    other.replace(other.find(first.machine_key()), first.machine_key().size(), "another machine");
    std::ofstream(file, std::ios::trunc) << other;
  }
  Scheduler third(c);
  (void)third.decide(w);
  EXPECT_EQ(third.metrics().calibrations, 1u) << "another machine's numbers are not reused";
  EXPECT_NE(read_file(file).find("machine " + first.machine_key()), std::string::npos);

  // A damaged file: measured again, never a crash.
  std::ofstream(file, std::ios::trunc) << "machine " << first.machine_key() << "\nmodel 0 2 oops\n";
  Scheduler fourth(c);
  (void)fourth.decide(w);
  EXPECT_EQ(fourth.metrics().calibrations, 1u);
}

TEST(SchedulerAdaptive, OnlineCorrectionMovesTheDecisionOffASlowedTier) {
  TempDir dir;
  Scheduler s(uncalibrated(Strategy::Adaptive, dir));
  const Work w = work(OpKind::GetBatch, 1000);
  const Decision before = s.decide(w);
  ASSERT_NE(before.tier, Tier::Sequential) << before.explain();
  // The chosen tier is observed 50x slower than modelled, a few times.
  const double modelled_us = before.costs[static_cast<int>(before.tier)].predicted_us;
  for (int i = 0; i < 5; ++i) {
    const std::uint64_t ticket = s.started(before.tier);
    s.finished(ticket, w, before.tier,
               std::chrono::nanoseconds(static_cast<std::int64_t>(modelled_us * 50e3)), {});
  }
  const Decision after = s.decide(w);
  EXPECT_NE(after.tier, before.tier) << after.explain();
  EXPECT_GT(after.costs[static_cast<int>(before.tier)].correction, 10.0) << after.explain();
  // Work of another size bucket far away is not affected.
  const Decision other = s.decide(work(OpKind::GetBatch, 1000000));
  EXPECT_DOUBLE_EQ(other.costs[static_cast<int>(before.tier)].correction, 1.0);
}

// A settled tier's one run 30x slower than usual (a preempted thread on a shared machine) moves
// its belief by at most 2^0.25 and leaves the decision where it was; the same slowdown lasting a
// few runs moves the decision off it.
TEST(SchedulerAdaptive, OneSlowRunOfASettledTierIsNotALastingSlowdown) {
  TempDir dir;
  Scheduler s(uncalibrated(Strategy::Adaptive, dir));
  const Work w = work(OpKind::Similarity, 1000, 10, 768);
  constexpr auto kCpu = static_cast<std::size_t>(Tier::Cpu);
  const double seq_us = s.decide(w).costs[static_cast<std::size_t>(Tier::Sequential)].predicted_us;
  for (int i = 0; i < 8; ++i) observe(s, w, Tier::Sequential, seq_us);
  for (int i = 0; i < 8; ++i) observe(s, w, Tier::Cpu, 0.5 * seq_us);
  const Decision settled = s.decide(w);
  ASSERT_EQ(settled.tier, Tier::Cpu) << settled.explain();

  observe(s, w, Tier::Cpu, 15.0 * seq_us);
  const Decision after_one = s.decide(w);
  EXPECT_EQ(after_one.tier, Tier::Cpu) << after_one.explain();
  EXPECT_LE(after_one.costs[kCpu].correction, 1.19 * settled.costs[kCpu].correction + 1e-9)
      << after_one.explain();

  int runs = 1;
  for (; runs <= 5 && s.decide(w).tier == Tier::Cpu; ++runs)
    observe(s, w, Tier::Cpu, 15.0 * seq_us);
  EXPECT_NE(s.decide(w).tier, Tier::Cpu) << "still on the arena after " << runs << " slow runs\n"
                                         << s.decide(w).explain();
}

TEST(SchedulerAdaptive, TheStoresRoundTripIsWaitedOncePerRoundOfBlockingChunks) {
  // A durable get_batch of 1000 keys: 16 chunks of 64. Across a 2 ms link the arena's threads
  // each block for a round trip per chunk they take; fibers and the sequential (pipelined) read
  // wait for one round trip in all.
  TempDir dir;
  SchedulerConfig config = uncalibrated(Strategy::Adaptive, dir);
  Scheduler s(config);
  Work w = work(OpKind::GetBatch, 1000);
  w.durable = true;
  const Decision local = s.decide(w);
  for (const TierCost& c : local.costs) EXPECT_EQ(c.wait_us, 0.0) << local.explain();
  w.round_trip_us = 2000.0;
  const Decision remote = s.decide(w);
  const auto at = [&](Tier t) { return remote.costs[static_cast<std::size_t>(t)]; };
  const std::size_t threads =
      SimilarityEngine(SimilarityOptions{.resources = config.resources}).cpu_threads();
  EXPECT_DOUBLE_EQ(at(Tier::Cpu).wait_us, static_cast<double>((16 + threads - 1) / threads) * 2000);
  EXPECT_DOUBLE_EQ(at(Tier::Fiber).wait_us, 2000.0);
  EXPECT_DOUBLE_EQ(at(Tier::Sequential).wait_us, 2000.0);
  EXPECT_NE(remote.explain().find("waiting on the store"), std::string::npos) << remote.explain();
  if (threads < 16) {
    EXPECT_NE(remote.tier, Tier::Cpu) << remote.explain();
  }
  // The wait is not the correction's to learn: an observation of exactly the modelled work plus
  // the modelled wait leaves the correction where it was.
  const TierCost fiber = at(Tier::Fiber);
  const double modelled_work = (fiber.overhead_us + fiber.work_us) * fiber.correction;
  for (int i = 0; i < 5; ++i) {
    const std::uint64_t ticket = s.started(Tier::Fiber);
    s.finished(ticket, w, Tier::Fiber,
               std::chrono::nanoseconds(static_cast<std::int64_t>((modelled_work + 2000.0) * 1e3)),
               {});
  }
  EXPECT_NEAR(s.decide(w).costs[static_cast<std::size_t>(Tier::Fiber)].correction, fiber.correction,
              0.05 * fiber.correction);
  // Local work (no round trip) is not charged one.
  EXPECT_EQ(s.decide(work(OpKind::Similarity, 1000)).costs[0].wait_us, 0.0);
}

TEST(SchedulerAdaptive, QueueWaitSpillsWorkToAnotherTier) {
  TempDir dir;
  Scheduler s(uncalibrated(Strategy::Adaptive, dir));
  const Work w = work(OpKind::GetBatch, 1000);
  const Tier first = s.decide(w).tier;
  ASSERT_NE(first, Tier::Sequential);
  // Teach the tier a typical latency, then hold many operations in flight on it.
  const std::uint64_t t = s.started(first);
  s.finished(t, w, first, std::chrono::microseconds(200), {});
  std::vector<std::uint64_t> tickets;
  for (int i = 0; i < 50; ++i) tickets.push_back(s.started(first));
  const Decision busy = s.decide(w);
  EXPECT_NE(busy.tier, first) << busy.explain();
  EXPECT_GT(busy.costs[static_cast<int>(first)].queue_us, 0.0);
  for (const auto ticket : tickets)
    s.finished(ticket, w, first, std::chrono::microseconds(200), {});
  EXPECT_EQ(s.decide(w).costs[static_cast<int>(first)].queue_us, 0.0);
}

TEST(SchedulerMetrics, CountTruthfullyAndExportAsJsonAndPrometheus) {
  TempDir dir;
  Scheduler s(uncalibrated(Strategy::CpuOnly, dir));
  const Work w = work(OpKind::Similarity, 500);
  for (int i = 0; i < 3; ++i) {
    (void)s.decide(w);
    const auto ticket = s.started(Tier::Cpu);
    s.finished(ticket, w, Tier::Cpu, std::chrono::milliseconds(1), Execution{true, true});
  }
  const auto ticket = s.started(Tier::Sequential);
  s.finished(ticket, w, Tier::Sequential, std::chrono::milliseconds(2), Execution{false, false});
  s.add_prefetch(7, 3);

  const PerformanceMetrics m = s.metrics();
  EXPECT_EQ(m.total_operations, 4u);
  EXPECT_EQ(m.parallel_operations, 3u);
  EXPECT_EQ(m.simd_operations, 3u);
  EXPECT_NEAR(m.total_time_seconds, 0.005, 1e-12);
  EXPECT_NEAR(m.operations_per_second(), 800.0, 1e-6);
  EXPECT_NEAR(m.parallel_utilization(), 75.0, 1e-9);
  EXPECT_NEAR(m.simd_utilization(), 75.0, 1e-9);
  EXPECT_EQ(m.prefetch_hits, 7u);
  EXPECT_EQ(m.prefetch_misses, 3u);
  const TierMetrics& cpu = m.tiers[static_cast<int>(Tier::Cpu)];
  EXPECT_EQ(cpu.operations, 3u);
  EXPECT_EQ(cpu.items, 1500u);
  EXPECT_EQ(cpu.decisions, 3u);
  EXPECT_NEAR(cpu.busy_seconds, 0.003, 1e-12);
  EXPECT_NEAR(cpu.p50_us, 1000.0, 90.0);
  EXPECT_NEAR(cpu.p99_us, 1000.0, 90.0);
  EXPECT_NEAR(m.tiers[static_cast<int>(Tier::Sequential)].p50_us, 2000.0, 180.0);

  // Prometheus text format, read back: every sample is `name{labels} value` after its HELP and
  // TYPE lines, and the values are the metrics'.
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  std::istringstream lines(m.to_prometheus());
  std::string line;
  while (std::getline(lines, line)) {
    ASSERT_FALSE(line.empty());
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream f(line.substr(7));
      std::string name, type;
      f >> name >> type;
      ASSERT_TRUE(type == "counter" || type == "summary" || type == "gauge") << line;
      types[name] = type;
      continue;
    }
    const auto space = line.rfind(' ');
    ASSERT_NE(space, std::string::npos) << line;
    const std::string series = line.substr(0, space);
    std::size_t used = 0;
    const double value = std::stod(line.substr(space + 1), &used);
    ASSERT_EQ(used, line.size() - space - 1) << line;
    std::string family = series.substr(0, series.find('{'));
    for (const char* suffix : {"_sum", "_count"}) {
      const std::string sfx(suffix);
      if (!types.count(family) && family.size() > sfx.size() &&
          family.compare(family.size() - sfx.size(), sfx.size(), sfx) == 0)
        family.resize(family.size() - sfx.size());
    }
    ASSERT_TRUE(types.count(family)) << "sample before its TYPE: " << line;
    ASSERT_EQ(family.rfind("hetcache_", 0), 0u) << line;
    samples[series] = value;
  }
  EXPECT_EQ(samples["hetcache_operations_total"], 4.0);
  EXPECT_EQ(samples["hetcache_parallel_operations_total"], 3.0);
  EXPECT_EQ(samples["hetcache_prefetch_hits_total"], 7.0);
  EXPECT_EQ(samples["hetcache_tier_operations_total{tier=\"cpu\"}"], 3.0);
  EXPECT_EQ(samples["hetcache_tier_decisions_total{tier=\"cpu\"}"], 3.0);
  EXPECT_NEAR(samples["hetcache_tier_latency_seconds{tier=\"cpu\",quantile=\"0.5\"}"], 1e-3, 1e-4);
  EXPECT_EQ(samples["hetcache_tier_latency_seconds_count{tier=\"sequential\"}"], 1.0);
  EXPECT_NEAR(samples["hetcache_operation_seconds_total"], 0.005, 1e-12);

  const std::string json = m.to_json();
  EXPECT_NE(json.find("\"total_operations\":4,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"parallel_utilization\":75,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"cpu\":{\"operations\":3,\"items\":1500,"), std::string::npos) << json;
  int depth = 0;
  for (const char ch : json) {
    depth += ch == '{' ? 1 : ch == '}' ? -1 : 0;
    ASSERT_GE(depth, 0);
  }
  EXPECT_EQ(depth, 0);

  s.reset_metrics();
  EXPECT_EQ(s.metrics().total_operations, 0u);
  EXPECT_EQ(s.metrics().tiers[static_cast<int>(Tier::Cpu)].p50_us, 0.0);
}

TEST(SchedulerOperations, EveryStrategyGivesTheUnscheduledResults) {
  TempDir dir;
  std::mt19937_64 rng(test_seed());
  const auto candidates = random_rows(rng, 3000, 48);
  const auto queries = random_rows(rng, 5, 48);
  CacheOptions options;
  options.dim = 48;
  EmbeddingCache cache(options);
  std::vector<std::string> keys;
  for (int i = 0; i < 600; ++i) keys.push_back("k" + std::to_string(i));
  cache.put_batch(keys, MatrixView(candidates.view().data(), 600, 48, candidates.stride));

  for (const Strategy strategy : {Strategy::FiberOnly, Strategy::CpuOnly, Strategy::GpuOnly,
                                  Strategy::Hybrid, Strategy::Adaptive}) {
    SchedulerConfig c = uncalibrated(strategy, dir);
    Scheduler s(c);
    Decision d;
    const Hits got = s.search(queries.view(), candidates.view(), 7, Metric::Cosine, &d);
    const Hits want =
        s.engine().search(queries.view(), candidates.view(), 7, Metric::Cosine, Tier::Sequential);
    for (std::size_t q = 0; q < 5; ++q) {
      for (std::size_t j = 0; j < 7; ++j)
        ASSERT_EQ(got.ids(q)[j], want.ids(q)[j]) << to_string(strategy);
    }
    std::vector<float> out(keys.size() * 48), expected(keys.size() * 48);
    const auto found = s.get_batch(cache, keys, MutableMatrixView(out.data(), keys.size(), 48), &d);
    const auto expected_found =
        cache.get_batch(keys, MutableMatrixView(expected.data(), keys.size(), 48));
    EXPECT_EQ(found, expected_found) << to_string(strategy) << " on " << to_string(d.tier);
    EXPECT_EQ(out, expected) << to_string(strategy);
    EXPECT_EQ(s.metrics().total_operations, 2u);
  }
}

TEST(SchedulerOperations, AParallelPutOfABadBatchChangesNothing) {
  TempDir dir;
  std::mt19937_64 rng(test_seed());
  CacheOptions options;
  options.dim = 16;
  EmbeddingCache cache(options);
  auto rows = random_rows(rng, 1000, 16);
  rows.row(999)[3] = std::nanf("");  // the last chunk is bad
  std::vector<std::string> keys;
  for (int i = 0; i < 1000; ++i) keys.push_back("p" + std::to_string(i));
  Scheduler s(uncalibrated(Strategy::CpuOnly, dir));
  EXPECT_THROW(s.put_batch(cache, keys, rows.view()), Error);
  EXPECT_EQ(cache.stats().entries, 0u) << "no chunk was written";
  rows.row(999)[3] = 0.5f;
  Decision d;
  s.put_batch(cache, keys, rows.view(), std::nullopt, &d);
  EXPECT_EQ(d.tier, Tier::Cpu);
  EXPECT_EQ(cache.stats().entries, 1000u);
  EXPECT_EQ(s.metrics().parallel_operations, 1u) << "the failed put is not counted as parallel";
}

}  // namespace
}  // namespace hetcache::test
