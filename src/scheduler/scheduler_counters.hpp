// Private: what a Scheduler counts, declared once -- the relaxed counters behind metrics(), what
// one finished operation adds to them, what metrics() reads and what reset_metrics() clears. The
// cost model's live state per tier (in flight, recent latency, wake-up) sits beside them.
#pragma once

#include <hetcache/placement.hpp>
#include <hetcache/scheduler.hpp>

#include <array>
#include <atomic>
#include <cstdint>

#include "scheduler/latency_histogram.hpp"

namespace hetcache::scheduler {

struct TierCounters {
  // Metrics (reset by reset_metrics).
  std::atomic<std::uint64_t> operations{0}, items{0}, busy_ns{0}, decisions{0};
  LatencyHistogram latency;
  // The cost model's view of the tier now (never reset).
  std::atomic<std::int64_t> in_flight{0};
  std::atomic<double> recent_latency_us{0.0};
  std::atomic<std::int64_t> last_finished_ns{0};
  std::atomic<double> wake_us{0.0};  // EWMA of (observed - predicted) after idle periods
};

struct SchedulerCounters {
  std::array<TierCounters, kAllTiers.size()> tiers;
  std::atomic<std::uint64_t> total_operations{0}, parallel_operations{0}, simd_operations{0},
      total_ns{0}, prefetch_hits{0}, prefetch_misses{0};

  TierCounters& tier(Tier t) noexcept { return tiers[static_cast<std::size_t>(t)]; }

  // An operation of `items` that ran `ns` on tier t.
  void count(Tier t, std::uint64_t items, std::uint64_t ns, Execution execution) noexcept {
    TierCounters& c = tier(t);
    c.operations.fetch_add(1, std::memory_order_relaxed);
    c.items.fetch_add(items, std::memory_order_relaxed);
    c.busy_ns.fetch_add(ns, std::memory_order_relaxed);
    c.latency.add(ns);
    total_operations.fetch_add(1, std::memory_order_relaxed);
    total_ns.fetch_add(ns, std::memory_order_relaxed);
    if (execution.parallel) parallel_operations.fetch_add(1, std::memory_order_relaxed);
    if (execution.simd) simd_operations.fetch_add(1, std::memory_order_relaxed);
  }

  void snapshot(PerformanceMetrics& m) const {
    const auto load = [](const std::atomic<std::uint64_t>& a) {
      return a.load(std::memory_order_relaxed);
    };
    m.total_operations = load(total_operations);
    m.parallel_operations = load(parallel_operations);
    m.simd_operations = load(simd_operations);
    m.total_time_seconds = static_cast<double>(load(total_ns)) / 1e9;
    m.prefetch_hits = load(prefetch_hits);
    m.prefetch_misses = load(prefetch_misses);
    for (std::size_t i = 0; i < tiers.size(); ++i) {
      const TierCounters& t = tiers[i];
      TierMetrics& out = m.tiers[i];
      out.operations = load(t.operations);
      out.items = load(t.items);
      out.busy_seconds = static_cast<double>(load(t.busy_ns)) / 1e9;
      out.decisions = load(t.decisions);
      out.p50_us = t.latency.quantile_us(0.50);
      out.p95_us = t.latency.quantile_us(0.95);
      out.p99_us = t.latency.quantile_us(0.99);
    }
  }

  void reset() noexcept {
    for (auto* c : {&total_operations, &parallel_operations, &simd_operations, &total_ns,
                    &prefetch_hits, &prefetch_misses})
      c->store(0, std::memory_order_relaxed);
    for (TierCounters& t : tiers) {
      for (auto* c : {&t.operations, &t.items, &t.busy_ns, &t.decisions})
        c->store(0, std::memory_order_relaxed);
      t.latency.reset();
    }
  }
};

}  // namespace hetcache::scheduler
