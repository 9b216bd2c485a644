#include "scheduler/exploration.hpp"

#include "scheduler/decision_text.hpp"

namespace hetcache::scheduler {

Choice cheapest_or_explore(const TierCosts& costs, OnlineCorrection& learning, const Slot& s,
                           std::int64_t now_ns, std::string* reason) {
  const TierCost* best = nullptr;
  const TierCost* second = nullptr;
  for (const TierCost& c : costs) {
    if (!c.available) continue;
    if (best == nullptr || c.predicted_us < best->predicted_us) {
      second = best;
      best = &c;
    } else if (second == nullptr || c.predicted_us < second->predicted_us) {
      second = &c;
    }
  }
  if (best == nullptr) {  // cannot happen: Sequential always runs
    if (reason != nullptr) *reason = "adaptive: no tier predicted";
    return {};
  }
  const std::uint64_t n = learning.next_decision(s);
  if (const std::optional<Tier> again = learning.take_follow_up(s)) {
    for (const TierCost& c : costs) {
      if (c.tier != *again || !c.available) continue;
      if (reason != nullptr)
        *reason = "adaptive: " + std::string(to_string(c.tier)) +
                  " again, awake after the try before (predicted " + format_us(c.predicted_us) +
                  ", " + std::string(to_string(best->tier)) + " " + format_us(best->predicted_us) +
                  ")";
      return {c.tier, false, true};
    }
  }
  // Among the tiers predicted within 2x: the least observed, and the one observed longest ago if
  // that is over stale_after_ns (never observed: the least observed is tried instead).
  const TierCost* least = nullptr;
  std::uint32_t least_samples = 0;
  const TierCost* stale = nullptr;
  std::int64_t stale_at = 0;
  for (const TierCost& c : costs) {
    if (!c.available || &c == best || c.predicted_us > kExploreWithin * best->predicted_us)
      continue;
    const std::uint32_t seen = learning.seen(s, c.tier);
    if (least == nullptr || seen < least_samples) {
      least = &c;
      least_samples = seen;
    }
    const std::int64_t at = learning.last_seen_ns(s, c.tier);
    if (at != 0 && now_ns - at > stale_after_ns(c.predicted_us - best->predicted_us) &&
        (stale == nullptr || at < stale_at)) {
      stale = &c;
      stale_at = at;
    }
  }
  const std::uint64_t every = least == nullptr || least_samples < kFewSamples ? kExploreEarlyEvery
                              : least->predicted_us <= kExploreNear * best->predicted_us
                                  ? kExploreEvery
                                  : kExploreFarEvery;
  if (least != nullptr && n % every == every - 1) {
    if (reason != nullptr)
      *reason = "adaptive: exploring " + std::string(to_string(least->tier)) + " (predicted " +
                format_us(least->predicted_us) + ", " + std::to_string(least_samples) +
                " observations in this size bucket) instead of " +
                std::string(to_string(best->tier)) + " " + format_us(best->predicted_us);
    return {least->tier, true};
  }
  // One decision claims a stale tier's try.
  if (stale != nullptr && learning.claim_try(s, stale->tier, stale_at, now_ns)) {
    if (reason != nullptr)
      *reason = "adaptive: trying " + std::string(to_string(stale->tier)) + " again (predicted " +
                format_us(stale->predicted_us) + ", last observed at this size " +
                format_us(static_cast<double>(now_ns - stale_at) / 1e3) + " ago) instead of " +
                std::string(to_string(best->tier)) + " " + format_us(best->predicted_us);
    return {stale->tier, true};
  }
  if (reason != nullptr) {
    *reason = "adaptive: " + std::string(to_string(best->tier)) + " predicted " +
              format_us(best->predicted_us);
    if (second != nullptr)
      *reason +=
          ", next " + std::string(to_string(second->tier)) + " " + format_us(second->predicted_us);
  }
  return {best->tier, false};
}

}  // namespace hetcache::scheduler
