// src/scheduler: the one place an operation's shape (a Work) becomes a Tier -- the fixed
// strategies' rules (strategy.cpp, rules.hpp, also the rule of an engine call that names no tier),
// Adaptive's calibration (calibration.cpp), cost model (this file), online correction
// (online_correction.hpp) and choice among the predicted costs (exploration.cpp),
// metrics (performance_metrics.cpp), how a decision reads (decision_text.cpp) and the scheduled
// operations, whole-database search included (database_search.cpp). It runs nothing itself: the
// engine and the cache run the tier chosen.

#include <hetcache/error.hpp>
#include <hetcache/scheduler.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <mutex>

#include "scheduler/calibration.hpp"
#include "scheduler/decision_text.hpp"
#include "scheduler/exploration.hpp"
#include "scheduler/online_correction.hpp"
#include "scheduler/rules.hpp"
#include "scheduler/scheduler_counters.hpp"
#include "scheduler/work_shapes.hpp"

namespace hetcache {
namespace {

using scheduler::Calibration;
using scheduler::format_us;
using scheduler::kTiers;
using scheduler::Slot;
using scheduler::slot_of;

// Work Adaptive predicts under kShortUs (us) is placed kHoldFor operations at a time at its kind
// and size: the first is decided, the rest run where it ran (unless the work went idle in
// between), and one in kHoldFor of them teaches the correction. Deciding and learning cost about
// 0.2 us -- 3-6% of a 10-key memory read -- and work this short comes in streams, where 8
// operations are tens of microseconds.
constexpr double kShortUs = 50.0;
constexpr std::uint32_t kHoldFor = 8;

// A tier idle this long has parked its threads: its next operation pays for waking them (25-30
// us for a TBB arena on the 2-vCPU test machine), and that observation says nothing about the
// tier's cost while in use.
constexpr std::int64_t kIdleAfterNs = 50'000;

using Clock = std::chrono::steady_clock;
std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

int tier_index(Tier t) { return static_cast<int>(t); }

using scheduler::TierCounters;

}  // namespace

struct Scheduler::Impl {
  SchedulerConfig config;
  SimilarityEngine engine;
  // Whether the Resources have a GPU, and the machine key that names it; asked for the first time
  // a similarity that could run there is placed (or the key is needed), so a scheduler -- every
  // cache has one -- opens no CUDA context while it only places cache I/O.
  struct GpuView {
    bool available = false;
    std::string reason;  // why not, when not
    std::string key;     // the calibration's machine key
  };
  mutable std::once_flag gpu_once;
  mutable GpuView gpu_view;

  // The calibration in use. Readers take the pointer without a lock (every decision and every
  // finished operation reads it); a recalibration installs a new one and keeps the old alive,
  // as a reader may still hold it (there are a handful over a process's life).
  std::once_flag calibrated_once;
  std::atomic<const Calibration*> active{nullptr};
  std::mutex install_mutex;
  std::vector<std::unique_ptr<const Calibration>> installed;
  std::atomic<std::uint64_t> calibrations{0};
  // When the calibration in use was installed (steady clock, ns). A scheduled operation that began
  // before waited for it -- the first use on a fresh machine measures for 0.2 s -- and Adaptive
  // learns from its time since then only: taught the wait, the tier that ran a cold scheduler's
  // first operation looked 10-40x slower and was shut out of that size and its neighbours.
  std::atomic<std::int64_t> installed_at_ns{0};

  scheduler::OnlineCorrection learning;  // observed / modelled, per kind, size and tier

  scheduler::SchedulerCounters counters;

  static SimilarityOptions engine_options(const SchedulerConfig& c) {
    SimilarityOptions o;
    if (!c.enable_simd) o.isa = Isa::Scalar;
    o.gpu_precision = c.gpu_precision;
    o.resources = c.resources;
    return o;
  }

  explicit Impl(SchedulerConfig c)
      : config((validate(c), std::move(c))), engine(engine_options(config)) {
    if (!config.resources) config.resources = engine.resources();
  }

  const GpuView& gpu() const {
    std::call_once(gpu_once, [this] {
      gpu_view.available = engine.gpu_available();
      const GpuStats stats = engine.gpu_stats();
      gpu_view.reason = stats.reason;
      gpu_view.key =
          scheduler::machine_key(engine.isa(), gpu_view.available ? stats.device : std::string());
    });
    return gpu_view;
  }

  std::string file() const {
    return scheduler::calibration_path(scheduler::calibration_directory(config.calibration_dir),
                                       gpu().key);
  }

  void install(Calibration c) {
    std::lock_guard lock(install_mutex);
    installed.push_back(std::make_unique<const Calibration>(std::move(c)));
    active.store(installed.back().get(), std::memory_order_release);
    installed_at_ns.store(now_ns(), std::memory_order_release);
  }

  void measure_and_store() {
    Calibration measured =
        scheduler::measure_calibration(gpu().key, config, engine, gpu().available);
    calibrations.fetch_add(1);
    (void)scheduler::save_calibration(file(), measured);
    install(std::move(measured));
  }

  const Calibration& current_calibration() {
    if (const Calibration* c = active.load(std::memory_order_acquire)) return *c;
    std::call_once(calibrated_once, [this] {
      if (!config.calibrate) {
        install(scheduler::estimated_calibration(gpu().key, engine.cpu_threads(), gpu().available));
      } else if (auto loaded = scheduler::load_calibration(file(), gpu().key)) {
        install(std::move(*loaded));
      } else {
        measure_and_store();
      }
    });
    return *active.load(std::memory_order_acquire);
  }

  // Whether tier t can run w here; why not, when asked (`why` not null).
  bool runs_on(const Work& w, Tier t, std::string* why) const {
    switch (t) {
      case Tier::Sequential:
      case Tier::Cpu:
        return true;
      case Tier::Fiber:
        if (is_io(w.op)) return true;
        if (why != nullptr) *why = "fibers run I/O, not compute";
        return false;
      case Tier::Gpu:
        if (w.op != OpKind::Similarity) {
          if (why != nullptr) *why = "the GPU runs similarity only";
          return false;
        }
        if (w.host_only) {
          if (why != nullptr) *why = "this data has no device copy";
          return false;
        }
        if (!gpu().available) {
          if (why != nullptr) *why = "no GPU: " + gpu().reason;
          return false;
        }
        return true;
    }
    return false;
  }

  // A batch of one chunk is not split: it runs like Sequential, and is modelled so.
  bool one_chunk(const Work& w, Tier t) const {
    return w.op != OpKind::Similarity && (t == Tier::Fiber || t == Tier::Cpu) &&
           w.items <= config.optimal_batch_size;
  }

  // The model's cost, before correction and queue wait (what an observation is compared with).
  struct ModelledCost {
    double overhead_us = 0.0, work_us = 0.0, transfer_us = 0.0;
    double total() const { return overhead_us + work_us + transfer_us; }
  };
  ModelledCost modelled(const Calibration& cal, const Work& w, Tier t) const {
    const scheduler::TierModel& m =
        cal.model(scheduler::model_op(w.op), one_chunk(w, t) ? Tier::Sequential : t);
    ModelledCost c;
    c.overhead_us = m.overhead_us;
    c.work_us = scheduler::work_units(w) * m.us_per_unit;
    if (t == Tier::Gpu && !w.data_on_gpu && cal.link_gb_per_s > 0.0) {
      c.transfer_us = static_cast<double>(w.items) * static_cast<double>(w.dim) * sizeof(float) /
                      (cal.link_gb_per_s * 1e3);
    }
    return c;
  }

  // The store round trips tier t waits for one after another (see TierCost::wait_us): a chunk
  // on the arena blocks its thread for one, so the arena's threads take them in rounds.
  double wait_us(const Work& w, Tier t) const {
    if (!is_io(w.op) || !w.durable || !(w.round_trip_us > 0.0)) return 0.0;
    if (t == Tier::Gpu) return 0.0;
    if (t != Tier::Cpu || one_chunk(w, t)) return w.round_trip_us;
    const std::size_t chunk = std::max<std::size_t>(1, config.optimal_batch_size);
    const std::size_t chunks = (w.items + chunk - 1) / chunk;
    const std::size_t threads = std::max<std::size_t>(1, engine.cpu_threads());
    return static_cast<double>((chunks + threads - 1) / threads) * w.round_trip_us;
  }

  // Notes are written only when explaining. A tier idle since before `now` has parked its
  // threads: it is charged its wake-up over `burst_remaining`, the operations of this burst
  // expected from this one on (the burst pays the wake-up once; the tier stays awake for it).
  TierCost cost(const Calibration& cal, const Work& w, const Slot& s, Tier t, bool explain,
                double burst_remaining, std::int64_t now) {
    TierCost c;
    c.tier = t;
    if (!runs_on(w, t, explain ? &c.note : nullptr)) return c;
    if (!cal.model(s.op, t).usable) {
      if (explain) c.note = "not calibrated on this machine";
      return c;
    }
    c.available = true;
    if (explain && one_chunk(w, t)) c.note = "one chunk: runs like sequential";
    const ModelledCost base = modelled(cal, w, t);
    c.overhead_us = base.overhead_us;
    c.work_us = base.work_us;
    c.transfer_us = base.transfer_us;
    c.correction = std::exp(learning.log_correction(s, t));
    c.wait_us = wait_us(w, t);
    if (t != Tier::Sequential) {
      const TierCounters& live = counters.tier(t);
      const std::int64_t in_flight = live.in_flight.load(std::memory_order_relaxed);
      c.queue_us = static_cast<double>(std::max<std::int64_t>(0, in_flight)) *
                   live.recent_latency_us.load(std::memory_order_relaxed);
      if (in_flight <= 0 &&
          now - live.last_finished_ns.load(std::memory_order_relaxed) > kIdleAfterNs)
        c.wake_us = live.wake_us.load(std::memory_order_relaxed) / burst_remaining;
    }
    c.predicted_us = base.total() * c.correction + c.wait_us + c.queue_us + c.wake_us;
    return c;
  }

  using Costs = scheduler::TierCosts;

  // Adaptive's tier for w. A tier tried while its threads were parked, on work short enough that
  // waking them is a large part of it (under kWakeLearnedBelowUs), runs the next decision at its
  // size too: the try teaches the wake-up, the second run, awake, what the tier costs in use.
  Tier adaptive(const Costs& costs, const Slot& s, std::string* reason, std::int64_t now) {
    const scheduler::Choice choice =
        scheduler::cheapest_or_explore(costs, learning, s, now, reason);
    if (reason == nullptr && !choice.tried && !choice.followed_up &&
        costs[static_cast<std::size_t>(choice.tier)].predicted_us < kShortUs)
      learning.hold(s, choice.tier, kHoldFor - 1);
    if (choice.tried && choice.tier != Tier::Sequential) {
      const TierCounters& c = counters.tier(choice.tier);
      const TierCost& cost = costs[static_cast<std::size_t>(choice.tier)];
      const bool parked = c.in_flight.load(std::memory_order_relaxed) <= 0 &&
                          now - c.last_finished_ns.load(std::memory_order_relaxed) > kIdleAfterNs;
      if (parked && cost.predicted_us - cost.wake_us < scheduler::kWakeLearnedBelowUs)
        learning.follow_up(s, choice.tier);
    }
    return choice.tier;
  }

  // Decides where w runs and counts the decision. The costs and the reason are computed only
  // when `explained` is asked for (and the costs whenever Adaptive needs them): a scheduled
  // operation that does not ask pays for no string.
  Tier choose(const Work& w, const Slot& s, Decision* explained, std::int64_t now) {
    if (w.items == 0) throw Error(ErrorCode::InvalidArgument, "decide: work has no items");
    if (w.op == OpKind::Similarity && (w.dim == 0 || w.queries == 0))
      throw Error(ErrorCode::InvalidArgument,
                  "decide: a similarity needs queries >= 1 and dim >= 1");
    const bool explain = explained != nullptr;
    std::string* reason = explain ? &explained->reason : nullptr;
    // Adaptive, like Hybrid, runs I/O and puts of fewer than kSequentialBelow items where they
    // are (no tier is cheaper than none for them; a cache decides those once, not per call), and
    // those of one local chunk too (scheduler::one_local_chunk).
    const bool adaptive_model =
        config.strategy == Strategy::Adaptive && scheduler::model_places(config, w);
    // Read only when a model is asked for: a fixed strategy's placement stays a rule and a count.
    const bool sporadic =
        (explain || adaptive_model) &&
        now - learning.last_finished(s).load(std::memory_order_relaxed) > kIdleAfterNs;
    // Bursts are counted by the operations Adaptive places; an explained one only reads them.
    double burst_remaining = 1.0;
    if (adaptive_model || explain)
      burst_remaining = learning.burst_remaining(s, sporadic, adaptive_model && !explain);
    if (adaptive_model && !explain && !sporadic) {
      if (const std::optional<Tier> held = learning.take_held(s)) {
        counters.tier(*held).decisions.fetch_add(1, std::memory_order_relaxed);
        return *held;
      }
    }
    Costs costs;
    if (explain || adaptive_model) {
      const Calibration& cal = current_calibration();
      for (std::size_t i = 0; i < costs.size(); ++i)
        costs[i] = cost(cal, w, s, kAllTiers[i], explain, burst_remaining, now);
    }
    // Only a similarity that could run on the GPU asks whether there is one.
    const GpuView* device = w.op == OpKind::Similarity && !w.host_only ? &gpu() : nullptr;
    const Tier tier = adaptive_model      ? adaptive(costs, s, reason, now)
                      : device != nullptr ? scheduler::rule_tier(config, device->available,
                                                                 device->reason, w, reason)
                                          : scheduler::rule_tier(config, false, {}, w, reason);
    counters.tier(tier).decisions.fetch_add(1, std::memory_order_relaxed);
    if (explain) {
      explained->tier = tier;
      explained->strategy = config.strategy;
      explained->costs.assign(std::make_move_iterator(costs.begin()),
                              std::make_move_iterator(costs.end()));
    }
    return tier;
  }

  // Counts an operation that ran from `start` to `end` (steady clock, ns) and corrects the tier's
  // model for work of its size -- or, when the tier had been idle, its wake-up cost. `waited_ns`:
  // how much of it was spent waiting for the calibration, not on the tier.
  void record(const Work& w, const Slot& s, Tier tier, std::int64_t start, std::int64_t end,
              Execution execution, std::int64_t waited_ns = 0) {
    const auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(0, end - start));
    TierCounters& t = counters.tier(tier);
    t.in_flight.fetch_sub(1, std::memory_order_relaxed);
    const bool woke =
        tier != Tier::Sequential &&
        start - t.last_finished_ns.exchange(end, std::memory_order_relaxed) > kIdleAfterNs;
    // When work of this kind and size last finished: a stream of it keeps its tier awake.
    learning.last_finished(s).store(end, std::memory_order_relaxed);
    counters.count(tier, w.items, ns, execution);
    // What the tier took (the metrics above keep what the caller waited).
    double us = static_cast<double>(std::max<std::int64_t>(0, end - start - waited_ns)) / 1e3;
    t.recent_latency_us.store(0.8 * t.recent_latency_us.load(std::memory_order_relaxed) + 0.2 * us,
                              std::memory_order_relaxed);

    // A scheduler that has not needed its model yet (a fixed strategy never asked to explain)
    // learns nothing: calibrating here would put the micro-benchmark inside an operation.
    const Calibration* loaded = active.load(std::memory_order_acquire);
    if (loaded == nullptr || !runs_on(w, tier, nullptr)) return;
    if (config.strategy == Strategy::Adaptive && !scheduler::model_places(config, w)) return;
    const Calibration& cal = *loaded;
    if (!cal.model(s.op, tier).usable) return;
    const double modelled_us = modelled(cal, w, tier).total();
    // The correction learns the work, not the link: the round trips the model expects are taken
    // out of the observation first (at least 1% of it kept: a link faster than last measured
    // must not leave a ratio of zero).
    us = std::max(0.01 * us, us - wait_us(w, tier));
    if (!(modelled_us > 0.0) || !(us > 0.0)) return;
    // Short work in a stream teaches one operation in kHoldFor (see kShortUs).
    if (!woke && us < kShortUs && config.strategy == Strategy::Adaptive &&
        !learning.sample(s, kHoldFor))
      return;
    const double wake =
        learning.learn(s, tier, modelled_us, us, woke, scheduler::kWakeLearnedBelowUs, end);
    if (wake >= 0.0) {
      t.wake_us.store(0.75 * t.wake_us.load(std::memory_order_relaxed) + 0.25 * wake,
                      std::memory_order_relaxed);
    }
  }

  // One scheduled operation: decided and timed from the same clock reading (its latency
  // includes the decision), recorded when it ends -- a failed one too, as neither parallel nor
  // SIMD.
  class Run {
   public:
    Run(Impl& impl, const Work& work, Decision* decision)
        : impl_(impl),
          work_(work),
          slot_(slot_of(work)),
          start_(now_ns()),
          tier_(impl.choose(work, slot_, decision, start_)),
          waited_ns_(std::max<std::int64_t>(
              0, impl.installed_at_ns.load(std::memory_order_acquire) - start_)) {
      impl_.counters.tier(tier_).in_flight.fetch_add(1, std::memory_order_relaxed);
    }
    ~Run() {
      try {
        impl_.record(work_, slot_, tier_, start_, now_ns(), execution_, waited_ns_);
      } catch (...) {  // the metrics must never turn a result into an error
      }
    }
    Run(const Run&) = delete;
    Run& operator=(const Run&) = delete;
    Tier tier() const { return tier_; }
    void succeeded(Execution execution) { execution_ = execution; }

   private:
    Impl& impl_;
    const Work& work_;
    const Slot slot_;
    std::int64_t start_;
    Tier tier_;
    std::int64_t waited_ns_;  // for the calibration, installed while this one was being decided
    Execution execution_{};
  };
};

Scheduler::Scheduler(SchedulerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Scheduler::~Scheduler() = default;

const SchedulerConfig& Scheduler::config() const noexcept { return impl_->config; }
bool Scheduler::gpu_available() const noexcept {
  try {
    return impl_->gpu().available;
  } catch (...) {  // what the tier could not even report: no GPU
    return false;
  }
}
std::string Scheduler::machine_key() const { return impl_->gpu().key; }
std::string Scheduler::calibration_file() const { return impl_->file(); }

void Scheduler::recalibrate() {
  (void)impl_->current_calibration();  // the first use's path runs once either way
  impl_->measure_and_store();
}

Decision Scheduler::decide(const Work& work) {
  Decision d;
  (void)impl_->choose(work, slot_of(work), &d, now_ns());
  return d;
}

Tier Scheduler::place(const Work& work) {
  return impl_->choose(work, slot_of(work), nullptr, now_ns());
}

std::uint64_t Scheduler::started(Tier tier) {
  impl_->counters.tier(tier).in_flight.fetch_add(1, std::memory_order_relaxed);
  return static_cast<std::uint64_t>(tier_index(tier));
}

void Scheduler::finished(std::uint64_t ticket, const Work& work, Tier tier,
                         std::chrono::nanoseconds latency, Execution execution) {
  if (ticket != static_cast<std::uint64_t>(tier_index(tier)))
    throw Error(ErrorCode::InvalidArgument, "finished: the ticket is not started() on this tier");
  const std::int64_t end = now_ns();
  impl_->record(work, slot_of(work), tier, end - std::max<std::int64_t>(0, latency.count()), end,
                execution);
}

const SimilarityEngine& Scheduler::engine() const noexcept { return impl_->engine; }

Hits Scheduler::search(MatrixView queries, MatrixView candidates, std::size_t k, Metric metric,
                       Decision* decision) {
  return search(queries, CandidateView(candidates), k, metric, decision);
}

Hits Scheduler::search(MatrixView queries, CandidateView candidates, std::size_t k, Metric metric,
                       Decision* decision) {
  const Work work =
      scheduler::similarity_work(queries.rows(), candidates.rows().rows(), candidates.rows().dim());
  Impl::Run run(*impl_, work, decision);
  Hits hits = impl_->engine.search(queries, candidates, k, metric, run.tier());
  run.succeeded(scheduler::compute_execution(run.tier(), impl_->engine));
  return hits;
}

std::vector<std::uint8_t> Scheduler::get_batch(EmbeddingCache& cache,
                                               std::span<const std::string> keys,
                                               MutableMatrixView out, Decision* decision) {
  const Work work = scheduler::cache_work(OpKind::Get, OpKind::GetBatch, keys.size(), cache.dim(),
                                          cache.has_durable_store());
  Impl::Run run(*impl_, work, decision);
  const Tier tier = run.tier();
  const std::size_t chunk = impl_->config.optimal_batch_size;
  auto found = cache.get_batch(keys, out, tier);
  run.succeeded(scheduler::batch_execution(tier, keys.size(), chunk, impl_->engine.cpu_threads()));
  return found;
}

void Scheduler::put_batch(EmbeddingCache& cache, std::span<const std::string> keys,
                          MatrixView values, Ttl ttl, Decision* decision) {
  const Work work = scheduler::cache_work(OpKind::Put, OpKind::PutBatch, keys.size(), cache.dim(),
                                          cache.has_durable_store());
  Impl::Run run(*impl_, work, decision);
  const Tier tier = run.tier();
  const std::size_t chunk = impl_->config.optimal_batch_size;
  cache.put_batch(keys, values, ttl, tier);
  run.succeeded(scheduler::batch_execution(tier, keys.size(), chunk, impl_->engine.cpu_threads()));
}

void Scheduler::add_prefetch(std::uint64_t hits, std::uint64_t misses) {
  impl_->counters.prefetch_hits.fetch_add(hits, std::memory_order_relaxed);
  impl_->counters.prefetch_misses.fetch_add(misses, std::memory_order_relaxed);
}

PerformanceMetrics Scheduler::metrics() const {
  PerformanceMetrics m;
  impl_->counters.snapshot(m);
  m.calibrations = impl_->calibrations.load();
  return m;
}

void Scheduler::reset_metrics() { impl_->counters.reset(); }

}  // namespace hetcache
