// Idle tiers: an operation after an idle spell teaches the tier's wake-up cost when it took longer
// than the tier runs awake, and corrects the tier's model when it was faster than that; a tier
// tried while parked runs the next decision too, awake.
#include <hetcache/scheduler.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "scheduler/scheduler_test_util.hpp"

namespace hetcache::test {
namespace {

constexpr auto kCpu = static_cast<std::size_t>(Tier::Cpu);
constexpr auto kSeq = static_cast<std::size_t>(Tier::Sequential);

// An Adaptive scheduler on built-in estimates, a get_batch of 1000 keys, and what it predicts for
// that on the Cpu tier in use, before any observation.
struct CpuGetBatch {
  TempDir dir;
  Scheduler s{uncalibrated(Strategy::Adaptive, dir)};
  Work w = work(OpKind::GetBatch, 1000);
  Decision before = s.decide(w);
  double awake_us = before.costs[kCpu].predicted_us;
};

TEST(SchedulerAdaptive, AnOperationAfterAnIdlePeriodTeachesTheWakeUpNotTheCorrection) {
  CpuGetBatch setup;
  auto& [dir, s, w, before, awake_us] = setup;
  ASSERT_GT(awake_us, 0.0);
  ASSERT_LT(awake_us, 900.0) << before.explain();
  // Each operation on the Cpu tier starts long after the last one ended, and takes 150 us more
  // than the model: its threads had to wake.
  observe_after_idle(s, w, Tier::Cpu, awake_us + 150.0, 6);
  // Right after such work finished, more of it is a stream: the tier stays awake, no wake-up.
  const Decision streaming = s.decide(w);
  EXPECT_DOUBLE_EQ(streaming.costs[kCpu].correction, before.costs[kCpu].correction)
      << "a wake-up is not the tier's cost in use\n"
      << streaming.explain();
  EXPECT_EQ(streaming.costs[kCpu].wake_us, 0.0) << streaming.explain();
  // Sporadic work (nothing of its kind for a while) pays for waking an idle tier.
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const Decision sporadic = s.decide(w);
  EXPECT_GT(sporadic.costs[kCpu].wake_us, 75.0) << sporadic.explain();
  EXPECT_LT(sporadic.costs[kCpu].wake_us, 150.0) << sporadic.explain();
  EXPECT_NEAR(sporadic.costs[kCpu].predicted_us,
              awake_us * sporadic.costs[kCpu].correction / before.costs[kCpu].correction +
                  sporadic.costs[kCpu].wake_us,
              1e-6 * awake_us);
  EXPECT_NE(sporadic.explain().find("wake-up"), std::string::npos) << sporadic.explain();
  // Back-to-back operations (each starting before the last one's end was long ago) are the tier
  // in use: they move the correction.
  for (int i = 0; i < 4; ++i) {
    const std::uint64_t ticket = s.started(Tier::Cpu);
    s.finished(ticket, w, Tier::Cpu,
               std::chrono::nanoseconds(static_cast<std::int64_t>(awake_us * 3e3)), {});
  }
  EXPECT_GT(s.decide(w).costs[kCpu].correction, 2.0 * before.costs[kCpu].correction);
}

TEST(SchedulerAdaptive, AnIdleTrySlowerThanWakingExplainsTeachesTheCorrectionToo) {
  // A tier that only ever runs after idle spells, each time 500 us slower than its awake model:
  // waking explains at most kWakeAtMostUs of that. Taken whole for a wake-up, the awake model
  // would stay 500 us too fast -- and a stream, which pays no wake-up, would keep choosing it.
  CpuGetBatch setup;
  auto& [dir, s, w, before, awake_us] = setup;
  ASSERT_LT(awake_us, 500.0) << before.explain();
  observe_after_idle(s, w, Tier::Cpu, awake_us + 500.0, 6);
  const Decision streaming = s.decide(w);
  EXPECT_GT(streaming.costs[kCpu].predicted_us, awake_us + 200.0) << streaming.explain();
  EXPECT_LT(streaming.costs[kCpu].predicted_us, awake_us + 500.0) << streaming.explain();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const Decision sporadic = s.decide(w);
  EXPECT_GT(sporadic.costs[kCpu].wake_us, 100.0) << sporadic.explain();
  EXPECT_LE(sporadic.costs[kCpu].wake_us, 200.0) << sporadic.explain();
}

// Similarity of 10 x 1000 x 768 on a scheduler of built-in estimates, Cpu well under the wake-up
// limit; Cpu observed in use at 2.5x its model and Sequential at its own, so the work moves to
// Sequential. Returns the decision before any observation.
Decision cpu_lost_to_sequential(Scheduler& s, const Work& w) {
  const Decision cold = s.decide(w);
  const double cpu_us = cold.costs[kCpu].predicted_us, seq_us = cold.costs[kSeq].predicted_us;
  EXPECT_LT(2.5 * cpu_us, 1000.0) << cold.explain();  // below what is ever taken for a wake-up
  for (int i = 0; i < 8; ++i) observe(s, w, Tier::Cpu, 2.5 * cpu_us);
  for (int i = 0; i < 8; ++i) observe(s, w, Tier::Sequential, seq_us);
  EXPECT_EQ(s.decide(w).tier, Tier::Sequential) << s.decide(w).explain();
  return cold;
}

TEST(SchedulerAdaptive, ATierTriedWithinAStreamWinsItBackWhenItIsFaster) {
  // A stream of similarity runs on Sequential because Cpu once looked slow; Adaptive tries Cpu
  // now and then, each time after Cpu sat idle. Those tries, fast, must move Cpu's model (had it
  // been chosen it would have stayed awake) -- not be taken for wake-ups, which would leave Cpu
  // looking slow for as long as the stream lasts.
  TempDir dir;
  Scheduler s(uncalibrated(Strategy::Adaptive, dir));
  const Work w = work(OpKind::Similarity, 1000, 10, 768);
  // Cpu in use, slower than Sequential: the stream moves to Sequential.
  const Decision cold = cpu_lost_to_sequential(s, w);
  ASSERT_FALSE(HasFailure());
  const double cpu_us = cold.costs[kCpu].predicted_us, seq_us = cold.costs[kSeq].predicted_us;
  ASSERT_LT(cpu_us, seq_us) << cold.explain();
  // The stream goes on on Sequential; every few operations Cpu is tried, after sitting idle, and
  // is fast.
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < 4; ++i) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      observe(s, w, Tier::Sequential, seq_us);
    }
    observe(s, w, Tier::Cpu, 0.8 * cpu_us);
  }
  const Decision after = s.decide(w);
  EXPECT_EQ(after.tier, Tier::Cpu) << after.explain();
  EXPECT_LT(after.costs[kCpu].correction, 1.2) << after.explain();
}

TEST(SchedulerAdaptive, ATierTriedAfterIdleSpellsCorrectsItsModelWhenItBeatsIt) {
  // Work that comes in bursts (each operation here after an idle spell, as the demo's rounds of
  // one strategy after another) runs on Sequential because Cpu once looked slow; Cpu, tried now
  // and then, finishes faster than its model says it runs awake. Waking cannot make a tier
  // faster: such a try corrects Cpu's model, which a wake-up of 0 would have left slow for good.
  TempDir dir;
  Scheduler s(uncalibrated(Strategy::Adaptive, dir));
  const Work w = work(OpKind::Similarity, 1000, 10, 768);
  const double cpu_us = cpu_lost_to_sequential(s, w).costs[kCpu].predicted_us;
  ASSERT_FALSE(HasFailure());
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // idle: not a stream
    observe(s, w, Tier::Cpu, 0.8 * cpu_us);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  // Cpu is predicted cheapest again, and runs -- unless this decision is the try of Sequential,
  // unobserved since the loop began (stale_after_ns).
  const Decision after = s.decide(w);
  EXPECT_LT(after.costs[kCpu].predicted_us, after.costs[kSeq].predicted_us) << after.explain();
  EXPECT_TRUE(after.tier == Tier::Cpu ||
              after.reason.starts_with("adaptive: trying sequential again"))
      << after.explain();
  EXPECT_LT(after.costs[kCpu].correction, 1.2) << after.explain();
}

TEST(SchedulerAdaptive, ATierTriedWhileParkedRunsTheNextDecisionToo) {
  // Similarity of 10 x 1000 x 768 runs on Sequential, Cpu in use 1.5x slower: within 2x, so
  // every 128th decision Adaptive tries Cpu. Its threads parked, that try can only teach the
  // wake-up; the next decision runs Cpu again, awake, to learn what it costs in use.
  TempDir dir;
  Scheduler s(uncalibrated(Strategy::Adaptive, dir));
  const Work w = work(OpKind::Similarity, 1000, 10, 768);
  const double seq_us = s.decide(w).costs[kSeq].predicted_us;
  ASSERT_LT(1.5 * seq_us, 1000.0);  // short enough that waking is a large part of it
  for (int i = 0; i < 8; ++i) observe(s, w, Tier::Cpu, 1.5 * seq_us);
  for (int i = 0; i < 8; ++i) observe(s, w, Tier::Sequential, seq_us);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // Cpu's threads park
  std::vector<Tier> tiers;
  for (int i = 0; i < 136; ++i) tiers.push_back(s.decide(w).tier);  // a try every 128th
  const auto tried = std::find(tiers.begin(), tiers.end(), Tier::Cpu);
  ASSERT_LT(tried - tiers.begin(), 134) << "Cpu never tried\n" << s.decide(w).explain();
  EXPECT_EQ(tried[1], Tier::Cpu) << "the try was not followed up";
  EXPECT_EQ(tried[2], Tier::Sequential) << "followed up more than once";
}

TEST(SchedulerAdaptive, AParkedTierIsChargedItsShareOfTheWakeUpInABurst) {
  // Work comes in bursts of 4 operations (here run on Sequential) with idle spells between.
  // Cpu, parked, is charged its wake-up over the operations of the burst expected from the one
  // decided on: a quarter at a burst's start, a third at its second operation -- waking it once
  // serves the rest of the burst, and a switch late in a burst serves fewer.
  CpuGetBatch setup;
  auto& [dir, s, w, before, awake_us] = setup;
  for (int i = 0; i < 3; ++i) observe(s, w, Tier::Cpu, awake_us);
  observe_after_idle(s, w, Tier::Cpu, awake_us + 150.0, 6);
  const double seq_us = before.costs[kSeq].predicted_us;
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const double wake_us = s.decide(w).costs[kCpu].wake_us;  // a burst of one so far: all of it
  ASSERT_GT(wake_us, 75.0);
  for (int burst = 0; burst < 12; ++burst) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    for (int i = 0; i < 4; ++i) {
      (void)s.place(w);
      observe(s, w, Tier::Sequential, seq_us);
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const Decision first = s.decide(w);
  EXPECT_NEAR(first.costs[kCpu].wake_us, wake_us / 4, 0.05 * wake_us) << first.explain();
  (void)s.place(w);
  observe(s, w, Tier::Sequential, seq_us);
  const Decision second = s.decide(w);
  EXPECT_NEAR(second.costs[kCpu].wake_us, wake_us / 3, 0.05 * wake_us) << second.explain();
}

}  // namespace
}  // namespace hetcache::test
