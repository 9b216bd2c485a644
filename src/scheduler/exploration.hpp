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

using TierCosts = std::array<TierCost, kTiers>;

// The cheapest predicted tier -- or, now and then, the least-observed tier predicted within 2x
// of it, so a tier whose calibration was pessimistic gets measured too (often while a
// plausible tier has fewer than kFewSamples observations at this size, rarely after: the tries of
// a tier predicted 1.25-2x the cheapest cost a stream 0.4-0.8% of its time, not 0.8-3%). A tier
// the caller asked to follow up (OnlineCorrection::follow_up) runs first, once.
struct Choice {
  Tier tier = Tier::Sequential;
  bool tried = false;        // an exploration: the tier is not the cheapest predicted
  bool followed_up = false;  // the second run of a tier tried while parked
};
Choice cheapest_or_explore(const TierCosts& costs, OnlineCorrection& learning, const Slot& s,
                           std::string* reason);

}  // namespace hetcache::scheduler
