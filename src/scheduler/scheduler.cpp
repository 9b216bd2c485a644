// The Scheduler: strategy rules, the Adaptive cost model with online correction, and metrics.
#include <hetcache/error.hpp>
#include <hetcache/scheduler.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <sstream>

#include "scheduler/calibration.hpp"
#include "scheduler/executors.hpp"
#include "scheduler/latency_histogram.hpp"

namespace hetcache {
namespace {

using scheduler::Calibration;
using scheduler::kModelOps;
using scheduler::kTiers;
using scheduler::ModelOp;

constexpr int kBuckets = 64;                 // size buckets: floor(log2(work units))
constexpr double kCorrectionWeight = 0.25;   // EWMA weight of a new observation (log space)
constexpr std::uint64_t kExploreEvery = 32;  // Adaptive tries a little-seen tier this often
constexpr double kExploreWithin = 2.0;       // ... when predicted within this factor of the best
constexpr Tier kTierList[] = {Tier::Sequential, Tier::Fiber, Tier::Cpu, Tier::Gpu};

int tier_index(Tier t) { return static_cast<int>(t); }

int bucket_of(double units) {
  if (!(units >= 1.0)) return 0;
  return std::min(kBuckets - 1, static_cast<int>(std::floor(std::log2(units))));
}

std::string format_us(double us) {
  char buf[32];
  if (us >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f s", us / 1e6);
  } else if (us >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.2f ms", us / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f us", us);
  }
  return buf;
}

// Observed / modelled latency, learned per kind of work, durable or not, tier and size bucket.
struct Correction {
  std::atomic<double> log_ratio{0.0};
  std::atomic<std::uint32_t> samples{0};
};

struct TierCounters {
  std::atomic<std::uint64_t> operations{0}, items{0}, busy_ns{0}, decisions{0};
  std::atomic<std::int64_t> in_flight{0};
  std::atomic<double> recent_latency_us{0.0};
  scheduler::LatencyHistogram latency;
};

}  // namespace

struct Scheduler::Impl {
  SchedulerConfig config;
  SimilarityEngine engine;
  bool gpu = false;
  std::string gpu_reason;
  std::string key;

  std::once_flag calibrated_once;
  std::mutex calibration_mutex;  // recalibrate() against readers
  std::shared_ptr<const Calibration> calibration;
  std::atomic<std::uint64_t> calibrations{0};

  Correction corrections[kModelOps][2][kTiers][kBuckets];
  std::atomic<std::uint64_t> bucket_decisions[kModelOps][2][kBuckets] = {};
  std::mutex correction_mutex;  // serialises the read-modify-write of one EWMA

  TierCounters tiers[kTiers];
  std::atomic<std::uint64_t> total_operations{0}, parallel_operations{0}, simd_operations{0},
      total_ns{0}, prefetch_hits{0}, prefetch_misses{0};

  static SimilarityOptions engine_options(const SchedulerConfig& c) {
    SimilarityOptions o;
    if (!c.enable_simd) o.isa = Isa::Scalar;
    o.cpu_threads = c.cpu_threads;
    o.gpu = c.gpu;
    return o;
  }

  explicit Impl(SchedulerConfig c)
      : config((validate(c), std::move(c))), engine(engine_options(config)) {
    gpu = config.gpu.enable && engine.gpu_available();
    const GpuStats stats = engine.gpu_stats();
    gpu_reason = stats.reason;
    key = scheduler::machine_key(engine.isa(), gpu ? stats.device : std::string());
  }

  std::string file() const {
    return scheduler::calibration_path(scheduler::calibration_directory(config.calibration_dir),
                                       key);
  }

  void measure_and_store() {
    auto measured =
        std::make_shared<Calibration>(scheduler::measure_calibration(key, config, engine, gpu));
    calibrations.fetch_add(1);
    (void)scheduler::save_calibration(file(), *measured);
    std::lock_guard lock(calibration_mutex);
    calibration = std::move(measured);
  }

  std::shared_ptr<const Calibration> current_calibration() {
    std::call_once(calibrated_once, [this] {
      if (!config.calibrate) {
        std::lock_guard lock(calibration_mutex);
        calibration = std::make_shared<Calibration>(
            scheduler::estimated_calibration(key, engine.cpu_threads(), gpu));
        return;
      }
      if (auto loaded = scheduler::load_calibration(file(), key)) {
        std::lock_guard lock(calibration_mutex);
        calibration = std::make_shared<Calibration>(std::move(*loaded));
        return;
      }
      measure_and_store();
    });
    std::lock_guard lock(calibration_mutex);
    return calibration;
  }

  Correction& correction(ModelOp op, bool durable, Tier t, int bucket) {
    return corrections[static_cast<int>(op)][durable ? 1 : 0][tier_index(t)][bucket];
  }

  // The learned log factor of tier t for the nearest bucket (within 3) that has one.
  bool learned(ModelOp op, bool durable, Tier t, int bucket, double& log_ratio) {
    for (int distance = 0; distance <= 3; ++distance) {
      for (const int b : {bucket - distance, bucket + distance}) {
        if (b < 0 || b >= kBuckets) continue;
        const Correction& c = correction(op, durable, t, b);
        if (c.samples.load(std::memory_order_relaxed) > 0) {
          log_ratio = c.log_ratio.load(std::memory_order_relaxed);
          return true;
        }
      }
    }
    return false;
  }

  // The tier's own learned factor; for a tier not observed at this size yet, half (in log space)
  // of what the other tiers learned there: what makes one tier slower than calibrated (bigger
  // data than the micro-benchmark's, a durable store behind the memory tier) usually slows the
  // others too, so an unobserved tier should not look cheap just because nobody measured it --
  // but a tier that alone got slow (contention) must still lose to the others.
  double correction_factor(ModelOp op, bool durable, Tier t, int bucket) {
    double log_ratio = 0.0;
    if (learned(op, durable, t, bucket, log_ratio)) return std::exp(log_ratio);
    double sum = 0.0;
    int others = 0;
    for (const Tier other : kTierList) {
      if (other == t || !learned(op, durable, other, bucket, log_ratio)) continue;
      sum += log_ratio;
      ++others;
    }
    return others == 0 ? 1.0 : std::exp(0.5 * sum / others);
  }

  bool runs_on(const Work& w, Tier t, std::string& why) const {
    switch (t) {
      case Tier::Sequential:
      case Tier::Cpu:
        return true;
      case Tier::Fiber:
        if (is_io(w.op)) return true;
        why = "fibers run I/O, not compute";
        return false;
      case Tier::Gpu:
        if (w.op != OpKind::Similarity) {
          why = "the GPU runs similarity only";
          return false;
        }
        if (!gpu) {
          why = "no GPU: " + gpu_reason;
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

  TierCost cost(const Calibration& cal, const Work& w, Tier t) {
    TierCost c;
    c.tier = t;
    if (!runs_on(w, t, c.note)) return c;
    const ModelOp op = scheduler::model_op(w.op);
    if (!cal.model(op, t).usable) {
      c.note = "not calibrated on this machine";
      return c;
    }
    c.available = true;
    if (one_chunk(w, t)) c.note = "one chunk: runs like sequential";
    const ModelledCost base = modelled(cal, w, t);
    c.overhead_us = base.overhead_us;
    c.work_us = base.work_us;
    c.transfer_us = base.transfer_us;
    c.correction = correction_factor(op, w.durable, t, bucket_of(scheduler::work_units(w)));
    if (t != Tier::Sequential) {
      const TierCounters& counters = tiers[tier_index(t)];
      c.queue_us = static_cast<double>(std::max<std::int64_t>(
                       0, counters.in_flight.load(std::memory_order_relaxed))) *
                   counters.recent_latency_us.load(std::memory_order_relaxed);
    }
    c.predicted_us = base.total() * c.correction + c.queue_us;
    return c;
  }

  void rule(Decision& d, const Work& w) const {
    const bool io = is_io(w.op);
    const std::string n = std::to_string(w.items);
    switch (config.strategy) {
      case Strategy::FiberOnly:
        d.tier = io ? Tier::Fiber : Tier::Sequential;
        d.reason = io ? "fiber-only: I/O on fibers"
                      : "fiber-only: compute runs on the calling thread (fibers run I/O only)";
        return;
      case Strategy::CpuOnly:
        d.tier = Tier::Cpu;
        d.reason = "cpu-only: everything on the TBB arena";
        return;
      case Strategy::GpuOnly:
        if (w.op == OpKind::Similarity && gpu) {
          d.tier = Tier::Gpu;
          d.reason = "gpu-only: similarity on the GPU";
        } else {
          d.tier = Tier::Cpu;
          d.reason = w.op != OpKind::Similarity
                         ? "gpu-only: the GPU runs similarity only, so this runs cpu-only"
                         : "gpu-only without a GPU (" + gpu_reason + "): falls back to cpu-only";
        }
        return;
      case Strategy::Hybrid: {
        const double multiply_adds = static_cast<double>(w.queries) * static_cast<double>(w.items) *
                                     static_cast<double>(w.dim);
        if (w.items < kSequentialBelow) {
          d.tier = Tier::Sequential;
          d.reason = "hybrid: n = " + n + " < 10 runs sequentially";
        } else if (io && w.items >= config.io_intensive_threshold) {
          d.tier = Tier::Fiber;
          d.reason = "hybrid: I/O with n = " + n + " >= io_intensive_threshold " +
                     std::to_string(config.io_intensive_threshold) + " on fibers";
        } else if (w.op == OpKind::Similarity && gpu &&
                   multiply_adds >= static_cast<double>(config.gpu_min_multiply_adds)) {
          d.tier = Tier::Gpu;
          d.reason = "hybrid: similarity of " +
                     std::to_string(static_cast<std::uint64_t>(multiply_adds)) +
                     " multiply-adds >= gpu_min_multiply_adds on the GPU";
        } else if (!io && w.items >= config.cpu_intensive_threshold) {
          d.tier = Tier::Cpu;
          d.reason = "hybrid: compute with n = " + n + " >= cpu_intensive_threshold " +
                     std::to_string(config.cpu_intensive_threshold) + " on the TBB arena";
        } else if (io) {
          d.tier = Tier::Fiber;
          d.reason = "hybrid: I/O with 10 <= n = " + n +
                     " < io_intensive_threshold: fibers (the seed's fallback)";
        } else {
          d.tier = Tier::Sequential;
          d.reason = "hybrid: compute with n = " + n +
                     " < cpu_intensive_threshold: the calling thread (the seed's Tokio fallback; "
                     "fibers do not compute)";
        }
        return;
      }
      case Strategy::Adaptive:
        break;
    }
  }

  void adaptive(Decision& d, const Work& w) {
    const TierCost* best = nullptr;
    const TierCost* second = nullptr;
    for (const TierCost& c : d.costs) {
      if (!c.available) continue;
      if (best == nullptr || c.predicted_us < best->predicted_us) {
        second = best;
        best = &c;
      } else if (second == nullptr || c.predicted_us < second->predicted_us) {
        second = &c;
      }
    }
    if (best == nullptr) {  // cannot happen: Sequential always runs
      d.tier = Tier::Sequential;
      d.reason = "adaptive: no tier predicted";
      return;
    }
    d.tier = best->tier;
    d.reason = "adaptive: " + std::string(to_string(best->tier)) + " predicted " +
               format_us(best->predicted_us);
    if (second != nullptr)
      d.reason +=
          ", next " + std::string(to_string(second->tier)) + " " + format_us(second->predicted_us);
    // Exploration: now and then run the least-observed plausible tier of this bucket, so a tier
    // whose calibration was pessimistic gets measured too.
    const ModelOp op = scheduler::model_op(w.op);
    const int bucket = bucket_of(scheduler::work_units(w));
    const std::uint64_t n =
        bucket_decisions[static_cast<int>(op)][w.durable ? 1 : 0][bucket].fetch_add(
            1, std::memory_order_relaxed);
    if (n % kExploreEvery == kExploreEvery - 1) {
      const TierCost* least = nullptr;
      std::uint32_t least_samples = 0;
      for (const TierCost& c : d.costs) {
        if (!c.available || &c == best || c.predicted_us > kExploreWithin * best->predicted_us)
          continue;
        const std::uint32_t s = correction(op, w.durable, c.tier, bucket).samples.load();
        if (least == nullptr || s < least_samples) {
          least = &c;
          least_samples = s;
        }
      }
      if (least != nullptr) {
        d.tier = least->tier;
        d.reason = "adaptive: exploring " + std::string(to_string(least->tier)) + " (predicted " +
                   format_us(least->predicted_us) + ", " + std::to_string(least_samples) +
                   " observations in this size bucket) instead of " +
                   std::string(to_string(best->tier)) + " " + format_us(best->predicted_us);
      }
    }
  }
};

Scheduler::Scheduler(SchedulerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Scheduler::~Scheduler() = default;

const SchedulerConfig& Scheduler::config() const noexcept { return impl_->config; }
bool Scheduler::gpu_available() const noexcept { return impl_->gpu; }
std::string Scheduler::machine_key() const { return impl_->key; }
std::string Scheduler::calibration_file() const { return impl_->file(); }

void Scheduler::recalibrate() {
  (void)impl_->current_calibration();  // the first use's path runs once either way
  impl_->measure_and_store();
}

Decision Scheduler::decide(const Work& work) {
  if (work.items == 0) throw Error(ErrorCode::InvalidArgument, "decide: work has no items");
  if (work.op == OpKind::Similarity && (work.dim == 0 || work.queries == 0))
    throw Error(ErrorCode::InvalidArgument, "decide: a similarity needs queries >= 1 and dim >= 1");
  const auto cal = impl_->current_calibration();
  Decision d;
  d.strategy = impl_->config.strategy;
  d.costs.reserve(kTiers);
  for (const Tier t : kTierList) d.costs.push_back(impl_->cost(*cal, work, t));
  if (d.strategy == Strategy::Adaptive) {
    impl_->adaptive(d, work);
  } else {
    impl_->rule(d, work);
  }
  impl_->tiers[tier_index(d.tier)].decisions.fetch_add(1, std::memory_order_relaxed);
  return d;
}

std::uint64_t Scheduler::started(Tier tier) {
  impl_->tiers[tier_index(tier)].in_flight.fetch_add(1, std::memory_order_relaxed);
  return static_cast<std::uint64_t>(tier_index(tier));
}

void Scheduler::finished(std::uint64_t ticket, const Work& work, Tier tier,
                         std::chrono::nanoseconds latency, Execution execution) {
  if (ticket < static_cast<std::uint64_t>(kTiers))
    impl_->tiers[ticket].in_flight.fetch_sub(1, std::memory_order_relaxed);
  const auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(0, latency.count()));
  TierCounters& t = impl_->tiers[tier_index(tier)];
  t.operations.fetch_add(1, std::memory_order_relaxed);
  t.items.fetch_add(work.items, std::memory_order_relaxed);
  t.busy_ns.fetch_add(ns, std::memory_order_relaxed);
  t.latency.add(ns);
  const double us = static_cast<double>(ns) / 1e3;
  t.recent_latency_us.store(0.8 * t.recent_latency_us.load(std::memory_order_relaxed) + 0.2 * us,
                            std::memory_order_relaxed);
  impl_->total_operations.fetch_add(1, std::memory_order_relaxed);
  impl_->total_ns.fetch_add(ns, std::memory_order_relaxed);
  if (execution.parallel) impl_->parallel_operations.fetch_add(1, std::memory_order_relaxed);
  if (execution.simd) impl_->simd_operations.fetch_add(1, std::memory_order_relaxed);

  // Online correction: how far this tier's model was off for work of this size.
  const auto cal = impl_->current_calibration();
  std::string unused;
  if (!impl_->runs_on(work, tier, unused)) return;
  const ModelOp op = scheduler::model_op(work.op);
  if (!cal->model(op, tier).usable) return;
  const double modelled = impl_->modelled(*cal, work, tier).total();
  if (!(modelled > 0.0) || !(us > 0.0)) return;
  const double observed = std::log(us / modelled);
  const int bucket = bucket_of(scheduler::work_units(work));
  Correction& c = impl_->correction(op, work.durable, tier, bucket);
  std::lock_guard lock(impl_->correction_mutex);
  const std::uint32_t samples = c.samples.load(std::memory_order_relaxed);
  // The first observation moves the prior (what neighbouring sizes or the other tiers suggest)
  // like any other: one cold or unlucky run must not lock a tier out.
  const double before = samples == 0
                            ? std::log(impl_->correction_factor(op, work.durable, tier, bucket))
                            : c.log_ratio.load(std::memory_order_relaxed);
  c.log_ratio.store((1.0 - kCorrectionWeight) * before + kCorrectionWeight * observed,
                    std::memory_order_relaxed);
  c.samples.store(samples + 1, std::memory_order_relaxed);
}

const SimilarityEngine& Scheduler::engine() const noexcept { return impl_->engine; }

namespace {

// Times one scheduled operation and reports it when it ends (a failed one counts, as neither
// parallel nor SIMD).
class TimedRun {
 public:
  TimedRun(Scheduler& scheduler, const Work& work, Tier tier)
      : scheduler_(scheduler), work_(work), tier_(tier), ticket_(scheduler.started(tier)) {}
  ~TimedRun() {
    try {
      scheduler_.finished(ticket_, work_, tier_, std::chrono::steady_clock::now() - start_,
                          execution_);
    } catch (...) {  // the metrics must never turn a result into an error
    }
  }
  TimedRun(const TimedRun&) = delete;
  TimedRun& operator=(const TimedRun&) = delete;
  void succeeded(Execution execution) { execution_ = execution; }

 private:
  Scheduler& scheduler_;
  const Work& work_;
  Tier tier_;
  std::uint64_t ticket_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  Execution execution_{};
};

// A chunked batch ran in parallel only if it had more than one chunk and more than one thread.
Execution batch_execution(Tier tier, std::size_t keys, std::size_t chunk, std::size_t threads) {
  Execution e;
  e.parallel = (tier == Tier::Fiber || tier == Tier::Cpu) && keys > chunk && threads > 1;
  return e;
}

Work cache_work(OpKind one, OpKind batch, const EmbeddingCache& cache, std::size_t keys) {
  Work work;
  work.op = keys == 1 ? one : batch;
  work.items = std::max<std::size_t>(keys, 1);
  work.dim = cache.dim();
  work.durable = cache.has_durable_tier();
  return work;
}

}  // namespace

Hits Scheduler::search(MatrixView queries, MatrixView candidates, std::size_t k, Metric metric,
                       Decision* decision) {
  Work work;
  work.op = OpKind::Similarity;
  work.items = std::max<std::size_t>(candidates.rows(), 1);
  work.queries = std::max<std::size_t>(queries.rows(), 1);
  work.dim = std::max<std::size_t>(candidates.dim(), 1);
  Decision d = decide(work);
  Hits hits;
  {
    TimedRun run(*this, work, d.tier);
    hits = impl_->engine.search(queries, candidates, k, metric, d.tier);
    Execution e;
    e.parallel = d.tier == Tier::Gpu || (d.tier == Tier::Cpu && impl_->engine.cpu_threads() > 1);
    e.simd = d.tier != Tier::Gpu && impl_->engine.isa() != Isa::Scalar;
    run.succeeded(e);
  }
  if (decision != nullptr) *decision = std::move(d);
  return hits;
}

std::vector<std::uint8_t> Scheduler::get_batch(EmbeddingCache& cache,
                                               std::span<const std::string> keys,
                                               MutableMatrixView out, Decision* decision) {
  const Work work = cache_work(OpKind::Get, OpKind::GetBatch, cache, keys.size());
  Decision d = decide(work);
  std::vector<std::uint8_t> found;
  {
    TimedRun run(*this, work, d.tier);
    const std::size_t chunk = impl_->config.optimal_batch_size;
    found = scheduler::get_batch_on(d.tier, cache, keys, out, chunk);
    run.succeeded(batch_execution(d.tier, keys.size(), chunk, impl_->engine.cpu_threads()));
  }
  if (decision != nullptr) *decision = std::move(d);
  return found;
}

void Scheduler::put_batch(EmbeddingCache& cache, std::span<const std::string> keys,
                          MatrixView values, Ttl ttl, Decision* decision) {
  const Work work = cache_work(OpKind::Put, OpKind::PutBatch, cache, keys.size());
  Decision d = decide(work);
  {
    TimedRun run(*this, work, d.tier);
    const std::size_t chunk = impl_->config.optimal_batch_size;
    scheduler::put_batch_on(d.tier, cache, keys, values, chunk, ttl);
    run.succeeded(batch_execution(d.tier, keys.size(), chunk, impl_->engine.cpu_threads()));
  }
  if (decision != nullptr) *decision = std::move(d);
}

void Scheduler::add_prefetch(std::uint64_t hits, std::uint64_t misses) {
  impl_->prefetch_hits.fetch_add(hits, std::memory_order_relaxed);
  impl_->prefetch_misses.fetch_add(misses, std::memory_order_relaxed);
}

PerformanceMetrics Scheduler::metrics() const {
  PerformanceMetrics m;
  m.total_operations = impl_->total_operations.load();
  m.parallel_operations = impl_->parallel_operations.load();
  m.simd_operations = impl_->simd_operations.load();
  m.total_time_seconds = static_cast<double>(impl_->total_ns.load()) / 1e9;
  m.prefetch_hits = impl_->prefetch_hits.load();
  m.prefetch_misses = impl_->prefetch_misses.load();
  m.calibrations = impl_->calibrations.load();
  for (int i = 0; i < kTiers; ++i) {
    const TierCounters& t = impl_->tiers[i];
    TierMetrics& out = m.tiers[i];
    out.operations = t.operations.load();
    out.items = t.items.load();
    out.busy_seconds = static_cast<double>(t.busy_ns.load()) / 1e9;
    out.decisions = t.decisions.load();
    out.p50_us = t.latency.quantile_us(0.50);
    out.p95_us = t.latency.quantile_us(0.95);
    out.p99_us = t.latency.quantile_us(0.99);
  }
  return m;
}

void Scheduler::reset_metrics() {
  for (auto* counter :
       {&impl_->total_operations, &impl_->parallel_operations, &impl_->simd_operations,
        &impl_->total_ns, &impl_->prefetch_hits, &impl_->prefetch_misses})
    counter->store(0);
  for (TierCounters& t : impl_->tiers) {
    t.operations.store(0);
    t.items.store(0);
    t.busy_ns.store(0);
    t.decisions.store(0);
    t.latency.reset();
  }
}

std::string Decision::explain() const {
  std::ostringstream o;
  o << "strategy " << to_string(strategy) << ": " << to_string(tier) << "\n  " << reason << '\n';
  for (const TierCost& c : costs) {
    o << "  " << to_string(c.tier) << ": ";
    if (!c.available) {
      o << "unavailable (" << c.note << ")\n";
      continue;
    }
    o << format_us(c.predicted_us) << " = (" << format_us(c.overhead_us) << " overhead + "
      << format_us(c.work_us) << " work";
    if (c.transfer_us > 0.0) o << " + " << format_us(c.transfer_us) << " transfer";
    o << ") x " << c.correction << " correction";
    if (c.queue_us > 0.0) o << " + " << format_us(c.queue_us) << " queue";
    o << '\n';
  }
  return o.str();
}

}  // namespace hetcache
