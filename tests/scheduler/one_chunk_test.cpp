// Gets and puts of one chunk (at most optimal_batch_size keys) of a local store run on the calling
// thread on every tier -- the arena and fibers split only batches of more -- so Adaptive places
// them by rule, on Sequential, and learns nothing from them; more keys, or a store across a link,
// and its cost model decides.
#include <hetcache/scheduler.hpp>

#include <gtest/gtest.h>

#include <string>

#include "scheduler/scheduler_test_util.hpp"

namespace hetcache::test {
namespace {

bool modelled(const Decision& d) { return d.reason.find("predicted") != std::string::npos; }

TEST(SchedulerAdaptive, OneLocalChunkOfGetsOrPutsRunsOnTheCallingThreadByRule) {
  TempDir dir;
  SchedulerConfig config = uncalibrated(Strategy::Adaptive, dir);
  config.optimal_batch_size = 32;
  Scheduler s(config);
  for (const OpKind op : {OpKind::GetBatch, OpKind::PutBatch}) {
    for (const std::size_t n : {10, 20, 32}) {
      const Decision d = s.decide(work(op, n));
      EXPECT_EQ(d.tier, Tier::Sequential) << d.explain();
      EXPECT_NE(d.reason.find("one chunk"), std::string::npos) << d.explain();
      EXPECT_EQ(s.place(work(op, n)), Tier::Sequential);
    }
    const Decision two_chunks = s.decide(work(op, 33));
    EXPECT_TRUE(modelled(two_chunks)) << two_chunks.explain();
  }
  Work remote = work(OpKind::GetBatch, 10);
  remote.round_trip_us = 500.0;
  const Decision across_a_link = s.decide(remote);
  EXPECT_TRUE(modelled(across_a_link)) << across_a_link.explain();
  const Decision similarity = s.decide(work(OpKind::Similarity, 10));
  EXPECT_TRUE(modelled(similarity)) << similarity.explain();
}

TEST(SchedulerAdaptive, OneLocalChunkTeachesTheModelNothing) {
  // Observed 100x slower than modelled, one-chunk reads would teach the model of the nearby sizes
  // it does place (a size borrows the correction of sizes up to 3 buckets away).
  TempDir dir;
  Scheduler s(uncalibrated(Strategy::Adaptive, dir));
  const Work one_chunk = work(OpKind::GetBatch, 64);
  const Work two_chunks = work(OpKind::GetBatch, 128);
  const double modelled_us = s.decide(one_chunk).costs[0].predicted_us;
  for (int i = 0; i < 20; ++i) observe(s, one_chunk, Tier::Sequential, 100 * modelled_us);
  const Decision d = s.decide(two_chunks);
  EXPECT_DOUBLE_EQ(d.costs[static_cast<std::size_t>(Tier::Sequential)].correction, 1.0)
      << d.explain();
}

}  // namespace
}  // namespace hetcache::test
