// Private: one cache operation as its scheduler placed it -- the tier it runs on (or the tier the
// caller named), timed from placement to finish() and recorded in the scheduler's metrics and
// online correction. An operation that never reaches finish() (it threw) is recorded on
// destruction as neither parallel nor SIMD.
#pragma once

#include <hetcache/scheduler.hpp>

#include <atomic>
#include <chrono>
#include <optional>

namespace hetcache::cache {

class PlacedOperation {
 public:
  PlacedOperation(Scheduler& scheduler, const Work& work, std::optional<Tier> named)
      : scheduler_(scheduler),
        work_(work),
        tier_(named ? *named : scheduler.place(work)),
        ticket_(scheduler.started(tier_)),
        start_(std::chrono::steady_clock::now()) {}
  ~PlacedOperation() { finish({}); }
  PlacedOperation(const PlacedOperation&) = delete;
  PlacedOperation& operator=(const PlacedOperation&) = delete;

  Tier tier() const noexcept { return tier_; }
  const Work& work() const noexcept { return work_; }

  // Records the operation once (later calls do nothing); never throws.
  void finish(Execution execution) noexcept {
    if (finished_.exchange(true, std::memory_order_acq_rel)) return;
    try {
      scheduler_.finished(ticket_, work_, tier_, std::chrono::steady_clock::now() - start_,
                          execution);
    } catch (...) {  // the metrics must never turn a result into an error
    }
  }

 private:
  Scheduler& scheduler_;
  const Work work_;
  const Tier tier_;
  const std::uint64_t ticket_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<bool> finished_{false};
};

// Finishes an operation (as failed, unless it finished already) when the scope ends. A task that
// runs an operation holds one, so the operation is recorded before the task's future is fulfilled
// -- after that the caller may destroy the cache and its scheduler.
class FinishOnExit {
 public:
  explicit FinishOnExit(PlacedOperation* op) noexcept : op_(op) {}
  ~FinishOnExit() {
    if (op_ != nullptr) op_->finish({});
  }
  FinishOnExit(const FinishOnExit&) = delete;
  FinishOnExit& operator=(const FinishOnExit&) = delete;

 private:
  PlacedOperation* op_;
};

}  // namespace hetcache::cache
