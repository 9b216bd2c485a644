// Short work (predicted under 50 us): in a stream, a decision places the next operations of the
// same kind and size too, until kHoldFor have run or the stream pauses, and one operation in
// kHoldFor teaches the correction -- Adaptive's own cost stays a small part of a few-microsecond
// operation.
#include <hetcache/scheduler.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

#include "scheduler/scheduler_test_util.hpp"

namespace hetcache::test {
namespace {

constexpr auto kSeq = static_cast<std::size_t>(Tier::Sequential);
constexpr int kHoldFor = 8;  // src/scheduler/scheduler.cpp

// A get_batch of 10 keys: one chunk, about 3 us on every tier by the built-in estimates. From a
// store across a link (round_trip_us > 0), so Adaptive models it -- one chunk of a local store it
// places by rule (one_chunk_test.cpp) -- and a link of a nanosecond, so the model's numbers are
// the read's own.
const Work kShort = [] {
  Work w = work(OpKind::GetBatch, 10);
  w.round_trip_us = 0.001;
  return w;
}();

TEST(SchedulerAdaptive, ShortWorkInAStreamRunsWhereItsDecisionRanUntilTheHoldEnds) {
  // Sequential is decided for a stream of short reads, then observed slow on long runs: a fresh
  // decision now moves off it, but the operations of the stream already placed there stay for
  // the rest of the hold -- then the next decision moves. A pause in the stream ends the hold.
  // Each attempt needs the stream unbroken (no gap over 50 us between operations); a preempted
  // attempt is tried again.
  bool held_then_moved = false;
  std::vector<Tier> last;
  for (int attempt = 0; attempt < 10 && !held_then_moved; ++attempt) {
    TempDir dir;
    Scheduler s(uncalibrated(Strategy::Adaptive, dir));
    const Tier first = s.place(kShort);  // after no work: decided, and held
    ASSERT_EQ(first, Tier::Sequential) << s.decide(kShort).explain();
    observe(s, kShort, first, 3.0);
    for (int i = 0; i < 3; ++i) observe(s, kShort, first, 500.0);  // long: always taught
    last.clear();
    for (int i = 0; i < kHoldFor; ++i) {
      last.push_back(s.place(kShort));
      observe(s, kShort, last.back(), 3.0);
    }
    std::vector<Tier> expected(kHoldFor - 1, Tier::Sequential);
    held_then_moved = std::equal(expected.begin(), expected.end(), last.begin()) &&
                      last.back() != Tier::Sequential;
  }
  EXPECT_TRUE(held_then_moved) << "last attempt placed: " << [&] {
    std::string text;
    for (const Tier t : last) text += std::string(to_string(t)) + " ";
    return text;
  }();
}

TEST(SchedulerAdaptive, APauseInTheStreamEndsTheHold) {
  TempDir dir;
  Scheduler s(uncalibrated(Strategy::Adaptive, dir));
  ASSERT_EQ(s.place(kShort), Tier::Sequential);  // decided, and held for the next seven
  observe(s, kShort, Tier::Sequential, 3.0);
  for (int i = 0; i < 3; ++i) observe(s, kShort, Tier::Sequential, 500.0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the stream pauses
  EXPECT_NE(s.place(kShort), Tier::Sequential) << s.decide(kShort).explain();
  EXPECT_NE(s.decide(kShort).tier, Tier::Sequential) << "explained decisions are never held";
}

TEST(SchedulerAdaptive, ShortWorkTeachesOneOperationInKHoldFor) {
  // Sequential never wakes, so every short observation on it is in a stream: the first of each
  // kHoldFor teaches. One observation 10x the model moves the correction to sqrt(10) (the first
  // is averaged with the prior); the next seven leave it there, the ninth moves it again.
  TempDir dir;
  Scheduler s(uncalibrated(Strategy::Adaptive, dir));
  const Decision before = s.decide(kShort);
  const double modelled_us = before.costs[kSeq].predicted_us;
  ASSERT_LT(10 * modelled_us, 50.0) << before.explain();
  const auto correction = [&] { return s.decide(kShort).costs[kSeq].correction; };
  observe(s, kShort, Tier::Sequential, 10 * modelled_us);
  EXPECT_NEAR(correction(), std::sqrt(10.0), 0.01);
  for (int i = 1; i < kHoldFor; ++i) observe(s, kShort, Tier::Sequential, 10 * modelled_us);
  EXPECT_NEAR(correction(), std::sqrt(10.0), 0.01) << "more than one in kHoldFor taught";
  observe(s, kShort, Tier::Sequential, 10 * modelled_us);
  EXPECT_GT(correction(), 4.0) << "the ninth did not teach";
  // A long stream of it still moves the decision off the slowed tier.
  for (int i = 0; i < 8 * kHoldFor; ++i) observe(s, kShort, Tier::Sequential, 10 * modelled_us);
  EXPECT_NE(s.decide(kShort).tier, Tier::Sequential) << s.decide(kShort).explain();
}

}  // namespace
}  // namespace hetcache::test
