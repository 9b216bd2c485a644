// Private: Adaptive's choice among the tiers' predicted costs -- the cheapest, or now and then a
// little-observed tier close to it, so a tier whose calibration was pessimistic gets measured.
// It reads what the online correction has seen and counts the decision there; it runs nothing.
#pragma once

#include <hetcache/scheduler.hpp>

#include <algorithm>
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
// A tier within 2x not observed at a size for a while is tried again at the next decision there:
// what it learned may be stale (a spell of contention that made it look slow has passed, and
// a stream of long operations reaches its 128th decision late or never). "A while" is as long as
// makes the try cost at most kStaleShare of the stream -- its predicted cost over the cheapest's,
// divided by kStaleShare -- and at least kStaleAtLeastNs: a 64 x 100 x 768 search 40 us slower
// than the cheapest is tried again after 4 ms, a 1 ms operation twice as slow after 100 ms.
inline constexpr double kStaleShare = 0.01;
inline constexpr std::int64_t kStaleAtLeastNs = 1'000'000;
inline constexpr double kStaleAtMostNs = 3.6e12;  // an hour: keeps the conversion in range
inline std::int64_t stale_after_ns(double extra_us) {
  const double ns = std::min(extra_us * 1e3 / kStaleShare, kStaleAtMostNs);
  return ns > static_cast<double>(kStaleAtLeastNs) ? static_cast<std::int64_t>(ns)
                                                   : kStaleAtLeastNs;
}

using TierCosts = std::array<TierCost, kTiers>;

// The cheapest predicted tier -- or, now and then, the least-observed tier predicted within 2x
// of it, so a tier whose calibration was pessimistic gets measured too (often while a
// plausible tier has fewer than kFewSamples observations at this size, rarely after: the tries of
// a tier predicted 1.25-2x the cheapest cost a stream 0.4-0.8% of its time, not 0.8-3%), or once
// it has gone stale_after_ns unobserved there. A tier the caller asked to follow up
// (OnlineCorrection::follow_up) runs first, once.
struct Choice {
  Tier tier = Tier::Sequential;
  bool tried = false;        // an exploration: the tier is not the cheapest predicted
  bool followed_up = false;  // the second run of a tier tried while parked
};
Choice cheapest_or_explore(const TierCosts& costs, OnlineCorrection& learning, const Slot& s,
                           std::int64_t now_ns, std::string* reason);

}  // namespace hetcache::scheduler
