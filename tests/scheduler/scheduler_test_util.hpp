// Helpers of the scheduler's tests: a scheduler on built-in estimates, a Work of a given shape,
// and an operation observed as if it had just run.
#pragma once

#include <hetcache/scheduler.hpp>

#include <chrono>
#include <cstdint>
#include <thread>

#include "cache/cache_test_util.hpp"

namespace hetcache::test {

inline SchedulerConfig uncalibrated(Strategy strategy, const TempDir& dir) {
  SchedulerConfig c;
  c.strategy = strategy;
  c.calibrate = false;  // built-in estimates: decisions do not depend on this machine's speed
  c.calibration_dir = dir.path();
  c.resources = two_thread_cpu_only_resources();
  return c;
}

inline Work work(OpKind op, std::size_t items, std::size_t queries = 1, std::size_t dim = 64) {
  Work w;
  w.op = op;
  w.items = items;
  w.queries = queries;
  w.dim = dim;
  return w;
}

// Observes `w` on `tier` as if it had just run for `us` microseconds.
inline void observe(Scheduler& s, const Work& w, Tier tier, double us) {
  const std::uint64_t ticket = s.started(tier);
  s.finished(ticket, w, tier, std::chrono::nanoseconds(static_cast<std::int64_t>(us * 1e3)), {});
}

// Observes `w` on `tier` `times` times, each after an idle spell long enough to park its threads.
inline void observe_after_idle(Scheduler& s, const Work& w, Tier tier, double us, int times) {
  for (int i = 0; i < times; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    observe(s, w, tier, us);
  }
}

}  // namespace hetcache::test
