// Private: what Adaptive learns while it runs -- observed / modelled latency per kind of work,
// durable or not, tier and size bucket (a log-space EWMA), how often each was seen (for
// exploration), and when work of each kind and size last finished (a stream keeps its tier awake).
#pragma once

#include <hetcache/placement.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <optional>

#include "scheduler/calibration.hpp"

namespace hetcache::scheduler {

inline constexpr int kBuckets = 64;                // size buckets: floor(log2(work units))
inline constexpr double kCorrectionWeight = 0.25;  // EWMA weight of a new observation (log space)
// An operation expected to take less than this (us) after an idle period teaches its tier's
// wake-up, not its correction: waking is tens of microseconds, a large part of such an operation.
inline constexpr double kWakeLearnedBelowUs = 1000.0;
// The most (us) one idle try teaches as a wake-up. Parked threads wake in tens of microseconds
// (the arena about 60 us on a 2-vCPU KVM guest); a try slower than its awake model by more than
// this was slow beyond waking, and the rest teaches the correction -- else a tier that only ever
// runs after idle spells would keep an awake model too fast for good, and win every stream.
inline constexpr double kWakeAtMostUs = 200.0;
// Once a tier has taught kSettledAfter observations at a size, one run teaches at most
// kSlowestTaught times what the tier is believed to cost there. On a shared machine a run now and
// then takes 10-40x its usual time (a preempted arena thread holds up the whole parallel_for):
// taught in full, one such run made the tier look 2-2.5x slower and kept it off for dozens of
// operations until an exploration tried it again; a lasting slowdown still wins within a few runs
// (each moves the belief up to 2^0.25 = 1.19x). Faster runs are taught in full: preemption only
// slows a run, so a fast one means the belief was too slow.
inline constexpr std::uint32_t kSettledAfter = 3;
inline constexpr double kSlowestTaught = 2.0;
inline constexpr double kBurstWeight = 0.25;  // EWMA weight of an ended burst's length

inline int bucket_of(double units) {
  if (!(units >= 1.0)) return 0;
  return std::min(kBuckets - 1, static_cast<int>(std::floor(std::log2(units))));
}

// Where a kind of work's learning lives: what it is, durable or not, and its size bucket --
// computed once per scheduled operation (its decision and its record share it).
struct Slot {
  ModelOp op;
  bool durable;
  int bucket;
};

inline Slot slot_of(const Work& w) { return {model_op(w.op), w.durable, bucket_of(work_units(w))}; }

class OnlineCorrection {
 public:
  // The tier's own learned factor (in log space); for a tier not observed at this size yet, half
  // of what the other tiers learned there: what makes one tier slower than calibrated (bigger
  // data than the micro-benchmark's, a durable store behind the memory store) usually slows the
  // others too, so an unobserved tier should not look cheap just because nobody measured it --
  // but a tier that alone got slow (contention) must still lose to the others.
  double log_correction(const Slot& s, Tier t) const {
    double log_ratio = 0.0;
    if (learned(s, t, log_ratio)) return log_ratio;
    double sum = 0.0;
    int others = 0;
    for (const Tier other : kAllTiers) {
      if (other == t || !learned(s, other, log_ratio)) continue;
      sum += log_ratio;
      ++others;
    }
    return others == 0 ? 0.0 : 0.5 * sum / others;
  }

  // Observations of tier t at this slot, idle or not.
  std::uint32_t seen(const Slot& s, Tier t) const {
    return at(s.op, s.durable, t, s.bucket).seen.load(std::memory_order_relaxed);
  }
  // When tier t was last observed at this slot, or last decided for a try (steady clock, ns; 0:
  // never). claim_try moves it to `now_ns` unless another decision did since `seen_at`.
  std::int64_t last_seen_ns(const Slot& s, Tier t) const {
    return at(s.op, s.durable, t, s.bucket).last_seen_ns.load(std::memory_order_relaxed);
  }
  bool claim_try(const Slot& s, Tier t, std::int64_t seen_at, std::int64_t now_ns) {
    return at(s.op, s.durable, t, s.bucket)
        .last_seen_ns.compare_exchange_strong(seen_at, now_ns, std::memory_order_relaxed);
  }
  // Counts a decision at this slot; returns how many came before it.
  std::uint64_t next_decision(const Slot& s) {
    return decisions_[index(s.op)][s.durable ? 1 : 0][s.bucket].fetch_add(
        1, std::memory_order_relaxed);
  }
  std::atomic<std::int64_t>& last_finished(const Slot& s) {
    return last_finished_ns_[index(s.op)][s.durable ? 1 : 0][s.bucket];
  }
  // Short work's decision, held for the next operations at this slot (see Scheduler::Impl's
  // kHoldFor): the held tier for one of them, if any is left.
  std::optional<Tier> take_held(const Slot& s) {
    std::atomic<std::uint32_t>& held = held_[index(s.op)][s.durable ? 1 : 0][s.bucket];
    std::uint32_t h = held.load(std::memory_order_relaxed);
    // One try: another thread that took the same hold first makes this one decide afresh.
    if ((h >> 8) == 0 || !held.compare_exchange_strong(h, h - (1u << 8), std::memory_order_relaxed))
      return std::nullopt;
    return static_cast<Tier>(h & 0xff);
  }
  void hold(const Slot& s, Tier t, std::uint32_t operations) {
    held_[index(s.op)][s.durable ? 1 : 0][s.bucket].store(
        (operations << 8) | static_cast<std::uint32_t>(t), std::memory_order_relaxed);
  }
  // Whether the next short operation finished at this slot is the one in `every` that teaches.
  bool sample(const Slot& s, std::uint32_t every) {
    std::atomic<std::uint32_t>& finished = records_[index(s.op)][s.durable ? 1 : 0][s.bucket];
    return finished.fetch_add(1, std::memory_order_relaxed) % every == 0;
  }

  // Bursts of work at this slot: operations that follow one another without an idle spell (the
  // demo's rounds run each strategy twice in a row; a server's requests come in bursts or alone).
  // Counts a decision -- `starts`: the work was idle before it -- and returns how many operations
  // of its burst are expected from this one on, at least 1: a parked tier's wake-up is paid once
  // per burst, so each operation is charged its share (a burst of one, the whole wake-up).
  // `count` false: the same answer for an operation that is only explained, nothing counted.
  double burst_remaining(const Slot& s, bool starts, bool count) {
    std::atomic<std::uint32_t>& ops = burst_ops_[index(s.op)][s.durable ? 1 : 0][s.bucket];
    std::atomic<double>& length = burst_length_[index(s.op)][s.durable ? 1 : 0][s.bucket];
    if (!count) {
      const double length_now = length.load(std::memory_order_relaxed);
      return std::max(1.0, starts ? length_now : length_now - ops.load(std::memory_order_relaxed));
    }
    if (starts) {
      const std::uint32_t ended = ops.exchange(1, std::memory_order_relaxed);
      if (ended > 0) {
        const double was = length.load(std::memory_order_relaxed);
        length.store(was > 0.0 ? (1.0 - kBurstWeight) * was + kBurstWeight * ended
                               : static_cast<double>(ended),
                     std::memory_order_relaxed);
      }
      return std::max(1.0, length.load(std::memory_order_relaxed));
    }
    const std::uint32_t before = ops.fetch_add(1, std::memory_order_relaxed);
    return std::max(1.0, length.load(std::memory_order_relaxed) - before);
  }

  // A tier tried at this slot whose next decision should run it again (its first run found its
  // threads parked and taught the wake-up; the second, awake, teaches what it costs in use).
  void follow_up(const Slot& s, Tier t) {
    follow_up_[index(s.op)][s.durable ? 1 : 0][s.bucket].store(static_cast<int>(t) + 1,
                                                               std::memory_order_relaxed);
  }
  // The tier to follow up at this slot, once, if any.
  std::optional<Tier> take_follow_up(const Slot& s) {
    std::atomic<int>& pending = follow_up_[index(s.op)][s.durable ? 1 : 0][s.bucket];
    // Read first: nearly every decision finds none, and must not write the shared line.
    if (pending.load(std::memory_order_relaxed) == 0) return std::nullopt;
    const int t = pending.exchange(0, std::memory_order_relaxed);
    if (t == 0) return std::nullopt;
    return static_cast<Tier>(t - 1);
  }

  // An observation of `us` where the model said `modelled_us` (before correction). After an idle
  // period (`woke`), a tier expected to take under wake_below_us that took longer than expected
  // teaches its wake-up cost instead, up to kWakeAtMostUs (the rest teaches the correction): the
  // return value (> 0) is that wake-up in us; -1 when it taught no wake-up. `now_ns`: when it
  // finished (steady clock), for exploration.
  double learn(const Slot& s, Tier tier, double modelled_us, double us, bool woke,
               double wake_below_us, std::int64_t now_ns) {
    Correction& c = at(s.op, s.durable, tier, s.bucket);
    std::lock_guard lock(mutex_);
    c.seen.fetch_add(1, std::memory_order_relaxed);
    c.last_seen_ns.store(now_ns, std::memory_order_relaxed);
    const std::uint32_t samples = c.samples.load(std::memory_order_relaxed);
    // What the tier is believed to cost now: its own learned factor once observed here, else the
    // prior (what neighbouring sizes or the other tiers suggest).
    const double before = log_correction(s, tier);
    // Waking costs tens of microseconds: it is learned from short operations, and long ones
    // after an idle period teach the correction like any other. So does a short one that beat
    // what the tier is believed to take awake: waking cannot explain that, and taken for a wake-up
    // of 0 it would leave a tier whose model is too slow, tried only after idle spells (work that
    // comes in bursts), looking slow for good.
    const double awake_us = modelled_us * std::exp(before);
    double wake = -1.0;
    if (woke && awake_us < wake_below_us && us > awake_us) {
      wake = us - awake_us;
      if (wake <= kWakeAtMostUs) return wake;
      wake = kWakeAtMostUs;
      us -= kWakeAtMostUs;
    }
    double observed = std::log(us / modelled_us);
    if (samples >= kSettledAfter) observed = std::min(observed, before + std::log(kSlowestTaught));
    // The first observations are averaged with the prior -- one cold or unlucky run must not
    // lock a tier out, but a tier settles within a few runs -- and later ones move an EWMA.
    const double weight = std::max(kCorrectionWeight, 1.0 / (samples + 2.0));
    c.log_ratio.store((1.0 - weight) * before + weight * observed, std::memory_order_relaxed);
    c.samples.store(samples + 1, std::memory_order_relaxed);
    return wake;
  }

 private:
  struct Correction {
    std::atomic<double> log_ratio{0.0};
    std::atomic<std::uint32_t> samples{0};      // observations that taught the correction
    std::atomic<std::uint32_t> seen{0};         // every observation, idle or not (for exploration)
    std::atomic<std::int64_t> last_seen_ns{0};  // the last one (or try decided), steady clock
  };
  static int index(ModelOp op) { return static_cast<int>(op); }

  Correction& at(ModelOp op, bool durable, Tier t, int bucket) {
    return corrections_[index(op)][durable ? 1 : 0][static_cast<int>(t)][bucket];
  }
  const Correction& at(ModelOp op, bool durable, Tier t, int bucket) const {
    return corrections_[index(op)][durable ? 1 : 0][static_cast<int>(t)][bucket];
  }
  // The learned log factor of tier t for the nearest bucket (within 3) that has one.
  bool learned(const Slot& s, Tier t, double& log_ratio) const {
    for (int distance = 0; distance <= 3; ++distance) {
      for (const int b : {s.bucket - distance, s.bucket + distance}) {
        if (b < 0 || b >= kBuckets) continue;
        const Correction& c = at(s.op, s.durable, t, b);
        if (c.samples.load(std::memory_order_relaxed) > 0) {
          log_ratio = c.log_ratio.load(std::memory_order_relaxed);
          return true;
        }
      }
    }
    return false;
  }

  Correction corrections_[kModelOps][2][kTiers][kBuckets];
  std::atomic<std::uint64_t> decisions_[kModelOps][2][kBuckets] = {};
  std::atomic<std::int64_t> last_finished_ns_[kModelOps][2][kBuckets] = {};
  std::atomic<int> follow_up_[kModelOps][2][kBuckets] = {};          // tier + 1; 0: none
  std::atomic<std::uint32_t> held_[kModelOps][2][kBuckets] = {};     // operations left << 8 | tier
  std::atomic<std::uint32_t> records_[kModelOps][2][kBuckets] = {};  // short ones finished
  std::atomic<std::uint32_t> burst_ops_[kModelOps][2][kBuckets] = {};  // decided in this burst
  std::atomic<double> burst_length_[kModelOps][2][kBuckets] = {};  // EWMA of ended bursts' lengths
  std::mutex mutex_;  // serialises the read-modify-write of one EWMA
};

}  // namespace hetcache::scheduler
