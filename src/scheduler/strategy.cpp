// Names of strategies and operations, the validation of SchedulerConfig, and the fixed
// strategies' rules.
#include <hetcache/error.hpp>
#include <hetcache/scheduler.hpp>

#include <algorithm>
#include <cstdio>
#include <string>

#include "core/ascii.hpp"
#include "scheduler/rules.hpp"

namespace hetcache {
namespace {

// Lower case, '_' as '-'.
std::string normalised(std::string_view text) {
  std::string s = ascii_lower(text);
  std::replace(s.begin(), s.end(), '_', '-');
  return s;
}

constexpr std::size_t kMaxThreshold = 1'000'000'000;

void fail(const std::string& message) { throw Error(ErrorCode::InvalidArgument, message); }

}  // namespace

std::string_view to_string(Strategy strategy) noexcept {
  switch (strategy) {
    case Strategy::FiberOnly:
      return "fiber-only";
    case Strategy::CpuOnly:
      return "cpu-only";
    case Strategy::GpuOnly:
      return "gpu-only";
    case Strategy::Hybrid:
      return "hybrid";
    case Strategy::Adaptive:
      return "adaptive";
  }
  return "unknown";
}

Strategy parse_strategy(std::string_view text) {
  const std::string s = normalised(text);
  for (const Strategy v : {Strategy::FiberOnly, Strategy::CpuOnly, Strategy::GpuOnly,
                           Strategy::Hybrid, Strategy::Adaptive}) {
    if (s == to_string(v)) return v;
  }
  fail("unknown strategy '" + std::string(text) +
       "' (expected fiber-only, cpu-only, gpu-only, hybrid or adaptive)");
  return Strategy::Hybrid;
}

std::string_view to_string(OpKind op) noexcept {
  switch (op) {
    case OpKind::Get:
      return "get";
    case OpKind::GetBatch:
      return "get_batch";
    case OpKind::Put:
      return "put";
    case OpKind::PutBatch:
      return "put_batch";
    case OpKind::Similarity:
      return "similarity";
  }
  return "unknown";
}

bool is_io(OpKind op) noexcept { return op == OpKind::Get || op == OpKind::GetBatch; }

void validate(const SchedulerConfig& c) {
  const auto threshold = [](const char* name, std::size_t v) {
    if (v < kSequentialBelow || v > kMaxThreshold) {
      fail(std::string(name) + " must be in [10, 1000000000] (below 10 work runs sequentially " +
           "anyway), got " + std::to_string(v));
    }
  };
  threshold("cpu_intensive_threshold", c.cpu_intensive_threshold);
  threshold("io_intensive_threshold", c.io_intensive_threshold);
  if (c.optimal_batch_size == 0 || c.optimal_batch_size > 1'000'000)
    fail("optimal_batch_size must be in [1, 1000000], got " + std::to_string(c.optimal_batch_size));
  if (c.cpu_min_multiply_adds == 0) fail("cpu_min_multiply_adds must be >= 1");
  if (c.gpu_min_multiply_adds == 0) fail("gpu_min_multiply_adds must be >= 1");
}

namespace scheduler {

Tier rule_tier(const SchedulerConfig& config, bool gpu, std::string_view gpu_reason, const Work& w,
               std::string* reason) {
  const auto say = [reason](auto&& make) {
    if (reason != nullptr) *reason = make();
  };
  const bool io = is_io(w.op);
  const auto n = [&w] { return std::to_string(w.items); };
  switch (config.strategy) {
    case Strategy::FiberOnly:
      say([io] {
        return std::string(io ? "fiber-only: I/O on fibers"
                              : "fiber-only: compute runs on the calling thread (fibers run I/O "
                                "only)");
      });
      return io ? Tier::Fiber : Tier::Sequential;
    case Strategy::CpuOnly:
      say([] { return std::string("cpu-only: everything on the TBB arena"); });
      return Tier::Cpu;
    case Strategy::GpuOnly:
      if (w.op == OpKind::Similarity && gpu && !w.host_only) {
        say([] { return std::string("gpu-only: similarity on the GPU"); });
        return Tier::Gpu;
      }
      say([&] {
        return w.op != OpKind::Similarity
                   ? std::string("gpu-only: the GPU runs similarity only, so this runs cpu-only")
               : w.host_only ? std::string(
                                   "gpu-only: this data has no device copy, so this runs "
                                   "cpu-only")
                             : "gpu-only without a GPU (" + std::string(gpu_reason) +
                                   "): falls back to cpu-only";
      });
      return Tier::Cpu;
    case Strategy::Hybrid:
    case Strategy::Adaptive:  // Adaptive is decided by the cost model; Hybrid's rule if asked
      break;
  }
  const double multiply_adds =
      static_cast<double>(w.queries) * static_cast<double>(w.items) * static_cast<double>(w.dim);
  if (w.items < kSequentialBelow) {
    say([&] {
      return std::string(to_string(config.strategy)) + ": n = " + n() + " < 10 runs sequentially";
    });
    return Tier::Sequential;
  }
  if (config.strategy == Strategy::Adaptive && one_local_chunk(config, w)) {
    say([&] {
      return "adaptive: n = " + n() + " <= optimal_batch_size " +
             std::to_string(config.optimal_batch_size) +
             " is one chunk, which every tier runs on the calling thread: sequential";
    });
    return Tier::Sequential;
  }
  if (io && w.items >= config.io_intensive_threshold) {
    say([&] {
      return "hybrid: I/O with n = " + n() + " >= io_intensive_threshold " +
             std::to_string(config.io_intensive_threshold) + " on fibers";
    });
    return Tier::Fiber;
  }
  if (w.op == OpKind::Similarity) {
    // Formatted only when a reason is asked for: every placed similarity passes here.
    const auto count = [multiply_adds] {
      char text[32];  // a double: the product of three sizes can pass 2^64
      std::snprintf(text, sizeof text, "%.4g", multiply_adds);
      return std::string(text);
    };
    if (gpu && !w.host_only && multiply_adds >= static_cast<double>(config.gpu_min_multiply_adds)) {
      say([&] {
        return "hybrid: similarity of " + count() +
               " multiply-adds >= gpu_min_multiply_adds on the GPU";
      });
      return Tier::Gpu;
    }
    if (multiply_adds >= static_cast<double>(config.cpu_min_multiply_adds)) {
      say([&] {
        return "hybrid: similarity of " + count() +
               " multiply-adds >= cpu_min_multiply_adds on the TBB arena";
      });
      return Tier::Cpu;
    }
    say([&] {
      return "hybrid: similarity of " + count() +
             " multiply-adds < cpu_min_multiply_adds: the calling thread";
    });
    return Tier::Sequential;
  }
  if (!io && w.items >= config.cpu_intensive_threshold) {
    say([&] {
      return "hybrid: compute with n = " + n() + " >= cpu_intensive_threshold " +
             std::to_string(config.cpu_intensive_threshold) + " on the TBB arena";
    });
    return Tier::Cpu;
  }
  if (io) {
    say([&] {
      return "hybrid: I/O with 10 <= n = " + n() +
             " < io_intensive_threshold: fibers";
    });
    return Tier::Fiber;
  }
  say([&] {
    return "hybrid: compute with n = " + n() +
           " < cpu_intensive_threshold: the calling thread (fibers do not compute)";
  });
  return Tier::Sequential;
}

Tier default_rule_tier(const Work& work, const std::function<bool()>& gpu_available) {
  static const SchedulerConfig defaults;
  const double multiply_adds = static_cast<double>(work.queries) * static_cast<double>(work.items) *
                               static_cast<double>(work.dim);
  const bool gpu = work.op == OpKind::Similarity && !work.host_only &&
                   multiply_adds >= static_cast<double>(defaults.gpu_min_multiply_adds) &&
                   gpu_available();
  return rule_tier(defaults, gpu, {}, work, nullptr);
}

}  // namespace scheduler
}  // namespace hetcache
