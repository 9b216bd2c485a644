// How often Adaptive tries a tier it does not predict cheapest, once both are observed at that
// size: every 32nd decision when the tier is predicted within 1.25x of the cheapest, every 128th
// beyond that (up to 2x, past which it is not tried) -- a try of a far tier costs a stream as
// much as four of a near one; and at the next decision once it has gone unobserved there for as
// long as makes its try cost 1% of the time (scheduler::stale_after_ns).
#include <hetcache/scheduler.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "scheduler/exploration.hpp"
#include "scheduler/online_correction.hpp"
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
  // size since: 60 ms later the next decision tries it again -- a stream of long operations
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

// Sequential and Cpu observed at one slot at t = 1 s, Sequential predicted `seq_us` and Cpu
// `cpu_us`: the tier cheapest_or_explore picks `after_ns` later (a try of Cpu marked tried).
struct Picked {
  Tier tier;
  bool tried;
};
class StaleSlot {
 public:
  StaleSlot(double seq_us, double cpu_us) {
    for (const Tier t : kAllTiers) costs_[static_cast<std::size_t>(t)].tier = t;
    costs_[kSeq].available = costs_[kCpu].available = true;
    costs_[kSeq].predicted_us = seq_us;
    costs_[kCpu].predicted_us = cpu_us;
    for (int i = 0; i < 4; ++i) {  // settled: past the early tries
      learning_->learn(slot_, Tier::Sequential, seq_us, seq_us, false, 0.0, kSeenAt);
      learning_->learn(slot_, Tier::Cpu, cpu_us, cpu_us, false, 0.0, kSeenAt);
    }
  }
  Picked after(std::int64_t after_ns) {
    const scheduler::Choice c =
        scheduler::cheapest_or_explore(costs_, *learning_, slot_, kSeenAt + after_ns, nullptr);
    return {c.tier, c.tried};
  }

 private:
  static constexpr std::int64_t kSeenAt = 1'000'000'000;
  scheduler::Slot slot_{scheduler::ModelOp::Similarity, false, 22};
  std::unique_ptr<scheduler::OnlineCorrection> learning_ =
      std::make_unique<scheduler::OnlineCorrection>();
  scheduler::TierCosts costs_{};
};

TEST(SchedulerAdaptive, AStaleTierIsTriedOnceItsTryCostsOnePercentOfTheTimeSince) {
  constexpr std::int64_t kMs = 1'000'000;
  // 40 us over the cheapest: tried after 4 ms, and by one decision only.
  StaleSlot near(100.0, 140.0);
  EXPECT_EQ(near.after(3 * kMs).tier, Tier::Sequential);
  const Picked tried = near.after(5 * kMs);
  EXPECT_EQ(tried.tier, Tier::Cpu);
  EXPECT_TRUE(tried.tried);
  EXPECT_EQ(near.after(5 * kMs + 1000).tier, Tier::Sequential) << "one decision takes the try";
  // 1 ms over: after 100 ms, not 60 (a try every 50 ms would cost a stream of such work 2%).
  StaleSlot far(1000.0, 2000.0);
  EXPECT_EQ(far.after(60 * kMs).tier, Tier::Sequential);
  EXPECT_EQ(far.after(101 * kMs).tier, Tier::Cpu);
  // 1 us over: 0.1 ms would do, but not before 1 ms (kStaleAtLeastNs).
  StaleSlot close(5.0, 6.0);
  EXPECT_EQ(close.after(kMs / 2).tier, Tier::Sequential);
  EXPECT_EQ(close.after(kMs + 1000).tier, Tier::Cpu);
  // Predicted over 2x the cheapest: never tried as stale.
  StaleSlot slow(100.0, 210.0);
  EXPECT_EQ(slow.after(3600 * 1000 * kMs).tier, Tier::Sequential);
}

}  // namespace
}  // namespace hetcache::test
