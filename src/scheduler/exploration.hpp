// Private: Adaptive's choice among the tiers' predicted costs -- the cheapest, or now and then a
// little-observed tier close to it, so a tier whose calibration was pessimistic gets measured.
// It reads what the online correction has seen and counts the decision there; it runs nothing.
#pragma once

#include <hetcache/scheduler.hpp>

#include <array>
#include <cstdint>
#include <string>

#include "scheduler/calibration.hpp"
#include "scheduler/online_correction.hpp"

namespace hetcache::scheduler {

inline constexpr double kExploreWithin = 2.0;    // a little-seen tier predicted this close is tried
inline constexpr std::uint32_t kFewSamples = 3;  // every kExploreEarlyEvery-th decision while it
inline constexpr std::uint64_t kExploreEarlyEvery = 8;  // has fewer observations than this,
inline constexpr std::uint64_t kExploreEvery = 32;      // and every 32nd after -- every 128th
inline constexpr double kExploreNear = 1.25;            // when predicted over 1.25x the cheapest:
inline constexpr std::uint64_t kExploreFarEvery = 128;  // a try costs 0.8% of a stream at most
// A tier within 2x not observed at a size for this long (ns) is tried again at the next decision
// there: what it learned may be stale (a spell of contention that made it look slow has passed),
// and a stream of long operations reaches its 128th decision late or never -- the demo's
// 64 x 2000 cell makes about 100. One try per 50 ms costs a stream of 1 ms operations 1% at most.
inline constexpr std::int64_t kStaleAfterNs = 50'000'000;

using TierCosts = std::array<TierCost, kTiers>;

// The cheapest predicted tier -- or, now and then, the least-observed tier predicted within 2x
// of it, so a tier whose calibration was pessimistic gets measured too (often while a
// plausible tier has fewer than kFewSamples observations at this size, rarely after: the tries of
// a tier predicted 1.25-2x the cheapest cost a stream 0.4-0.8% of its time, not 0.8-3%), or once
// it has gone kStaleAfterNs unobserved there. A tier the caller asked to follow up
// (OnlineCorrection::follow_up) runs first, once.
struct Choice {
  Tier tier = Tier::Sequential;
  bool tried = false;        // an exploration: the tier is not the cheapest predicted
  bool followed_up = false;  // the second run of a tier tried while parked
};
Choice cheapest_or_explore(const TierCosts& costs, OnlineCorrection& learning, const Slot& s,
                           std::int64_t now_ns, std::string* reason);

}  // namespace hetcache::scheduler
