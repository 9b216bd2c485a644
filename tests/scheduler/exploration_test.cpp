// How often Adaptive tries a tier it does not predict cheapest, once both are observed at that
// size: every 32nd decision when the tier is predicted within 1.25x of the cheapest, every 128th
// beyond that (up to 2x, past which it is not tried) -- a try of a far tier costs a stream as
// much as four of a near one; and at the next decision once it has gone 50 ms unobserved there.
#include <hetcache/scheduler.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "scheduler/scheduler_test_util.hpp"

namespace hetcache::test {
namespace {

constexpr auto kCpu = static_cast<std::size_t>(Tier::Cpu);
constexpr auto kSeq = static_cast<std::size_t>(Tier::Sequential);

struct Tries {
  double predicted_ratio = 0.0;  // Cpu's predicted time over Sequential's
  int explorations = 0;          // of Cpu, in 256 decisions
};

// Sequential and Cpu observed at a similarity where Cpu takes `cpu_over_seq` times as long,
// then 256 decisions with Cpu idle throughout.
Tries tries_of_cpu(double cpu_over_seq) {
  TempDir dir;
  Scheduler s(uncalibrated(Strategy::Adaptive, dir));
  const Work w = work(OpKind::Similarity, 1000, 10, 768);
  const double seq_us = s.decide(w).costs[kSeq].predicted_us;
  for (int i = 0; i < 8; ++i) observe(s, w, Tier::Cpu, cpu_over_seq * seq_us);
  for (int i = 0; i < 8; ++i) observe(s, w, Tier::Sequential, seq_us);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // Cpu's wake-up in every decision
  Tries t;
  const Decision first = s.decide(w);
  t.predicted_ratio = first.costs[kCpu].predicted_us / first.costs[kSeq].predicted_us;
  for (int i = 0; i < 256; ++i) {
    const Decision d = s.decide(w);
    if (d.tier == Tier::Cpu && d.reason.find("exploring") != std::string::npos) ++t.explorations;
  }
  return t;
}

TEST(SchedulerAdaptive, ATierPredictedFarFromTheCheapestIsTriedAQuarterAsOften) {
  const Tries near = tries_of_cpu(1.1);
  ASSERT_GT(near.predicted_ratio, 1.0);
  ASSERT_LE(near.predicted_ratio, 1.25) << "the setup missed the near band";
  EXPECT_GE(near.explorations, 7) << "every 32nd of 256";
  EXPECT_LE(near.explorations, 9);
  const Tries far = tries_of_cpu(1.6);
  ASSERT_GT(far.predicted_ratio, 1.25) << "the setup missed the far band";
  ASSERT_LE(far.predicted_ratio, 2.0) << "the setup missed the far band";
  EXPECT_GE(far.explorations, 1) << "every 128th of 256";
  EXPECT_LE(far.explorations, 3);
}

TEST(SchedulerAdaptive, ATierNotObservedForAWhileIsTriedAgain) {
  // Cpu looked 1.6x slower than Sequential (a spell of contention, say) and has not run at this
  // size since: 50 ms later the next decision tries it again -- a stream of long operations
  // would reach its 128th decision late or never -- and only that one.
  TempDir dir;
  Scheduler s(uncalibrated(Strategy::Adaptive, dir));
  const Work w = work(OpKind::Similarity, 1000, 10, 768);
  const double seq_us = s.decide(w).costs[kSeq].predicted_us;
  for (int i = 0; i < 8; ++i) observe(s, w, Tier::Cpu, 1.6 * seq_us);
  for (int i = 0; i < 8; ++i) observe(s, w, Tier::Sequential, seq_us);
  const Decision fresh = s.decide(w);
  ASSERT_EQ(fresh.tier, Tier::Sequential) << fresh.explain();
  ASSERT_LE(fresh.costs[kCpu].predicted_us, 2.0 * fresh.costs[kSeq].predicted_us)
      << fresh.explain();
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  const Decision stale = s.decide(w);
  EXPECT_EQ(stale.tier, Tier::Cpu) << stale.explain();
  EXPECT_NE(stale.reason.find("again"), std::string::npos) << stale.explain();
  // The try was of a parked tier, so the next decision runs it again (awake); none after it
  // tries it as stale again -- one decision took the try.
  for (int i = 0; i < 3; ++i) {
    const Decision next = s.decide(w);
    EXPECT_EQ(next.reason.find("last observed"), std::string::npos) << next.explain();
  }
}

}  // namespace
}  // namespace hetcache::test
