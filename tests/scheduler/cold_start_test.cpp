// Adaptive from a cold start: the first operation of a scheduler on a fresh machine waits for the
// calibration, and that wait is not what its tier costs.
#include <hetcache/scheduler.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <vector>

#include "cache/cache_test_util.hpp"

namespace hetcache::test {
namespace {

std::vector<float> random_rows(std::size_t rows, std::size_t dim, std::uint64_t seed) {
  std::vector<float> v(rows * dim);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& x : v) x = u(rng);
  return v;
}

TEST(SchedulerColdStart, TheFirstOperationTeachesItsTierNotTheCalibrationsWait) {
  TempDir dir;  // no calibration file: the first decision measures one
  SchedulerConfig c;
  c.strategy = Strategy::Adaptive;
  c.calibration_dir = dir.path();
  c.resources = cpu_only_resources();
  Scheduler scheduler(c);
  // 16 x 20000 x 256: milliseconds on every tier, so the first operation teaches the correction
  // (a shorter one after an idle spell would teach the tier's wake-up cost instead).
  constexpr std::size_t kDim = 256, kRows = 20000, kQueries = 16;
  const auto candidates = random_rows(kRows, kDim, 1), queries = random_rows(kQueries, kDim, 2);
  const MatrixView q(queries.data(), kQueries, kDim), x(candidates.data(), kRows, kDim);

  Decision first;
  const auto start = std::chrono::steady_clock::now();
  (void)scheduler.search(q, x, 10, Metric::Dot, &first);
  const double first_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(scheduler.metrics().calibrations, 1u) << "the first operation must have calibrated";

  Decision second;
  (void)scheduler.search(q, x, 10, Metric::Dot, &second);
  for (const TierCost& cost : second.costs) {
    if (cost.tier != first.tier) continue;
    // Taught the calibration's 0.2+ s, a millisecond search's tier came out 10-40x slower than
    // modelled; what the search itself took moves it by a small factor at most.
    EXPECT_LT(cost.correction, 4.0)
        << "the first operation ran on " << to_string(first.tier) << "; the second's costs:\n"
        << second.explain();
  }
  // The metrics keep what the caller waited.
  EXPECT_GE(scheduler.metrics().total_time_seconds, 0.9 * first_seconds);
}

}  // namespace
}  // namespace hetcache::test
