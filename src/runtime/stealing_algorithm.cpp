#include "runtime/stealing_algorithm.hpp"

#include <boost/fiber/type.hpp>

#include "runtime/asan_fiber.hpp"

namespace hetcache::runtime {

using boost::fibers::context;

namespace {
bool is_pinned(const context* ctx) noexcept {
  return ctx->is_context(boost::fibers::type::pinned_context);
}
}  // namespace

StealingAlgorithm::StealingAlgorithm(StealingPool& pool, std::size_t index)
    : pool_(pool), index_(index) {
  std::unique_lock lock(pool_.members_mutex);
  pool_.members[index_] = this;
}

StealingAlgorithm::~StealingAlgorithm() {
  std::unique_lock lock(pool_.members_mutex);
  pool_.members[index_] = nullptr;
}

void StealingAlgorithm::awakened(context* ctx) noexcept {
  // An unpinned fiber is detached while it waits in a queue, so any thread may attach it.
  const bool pinned = is_pinned(ctx);
  if (!pinned) ctx->detach();
  {
    std::lock_guard lock(queue_mutex_);
    ready_.push_back(ctx);
    if (!pinned) ++unpinned_ready_;
  }
  if (!pinned && pool_.sleepers.load() > 0) wake_a_sleeper();
}

context* StealingAlgorithm::pick_next() noexcept {
  context* next = nullptr;
  {
    std::lock_guard lock(queue_mutex_);
    if (!ready_.empty()) {
      next = ready_.front();
      ready_.pop_front();
      if (!is_pinned(next)) --unpinned_ready_;
    }
  }
  if (next == nullptr) {
    std::shared_lock members(pool_.members_mutex);
    const std::size_t n = pool_.members.size();
    for (std::size_t step = 1; step < n && next == nullptr; ++step) {
      StealingAlgorithm* peer = pool_.members[(index_ + step) % n];
      if (peer != nullptr) next = peer->steal();
    }
    if (next == nullptr) {
      runtime_detail::entering_context(nullptr);
      return nullptr;
    }
    pool_.steals.fetch_add(1, std::memory_order_relaxed);
  }
  if (!is_pinned(next)) context::active()->attach(next);
  runtime_detail::entering_context(next);
  return next;
}

bool StealingAlgorithm::has_ready_fibers() const noexcept {
  std::lock_guard lock(queue_mutex_);
  return !ready_.empty();
}

context* StealingAlgorithm::steal() noexcept {
  std::lock_guard lock(queue_mutex_);
  if (unpinned_ready_ == 0) return nullptr;
  for (auto it = ready_.end(); it != ready_.begin();) {
    --it;
    if (!is_pinned(*it)) {
      context* ctx = *it;
      ready_.erase(it);
      --unpinned_ready_;
      return ctx;
    }
  }
  return nullptr;
}

bool StealingAlgorithm::has_stealable() const noexcept {
  std::lock_guard lock(queue_mutex_);
  return unpinned_ready_ > 0;
}

void StealingAlgorithm::suspend_until(
    std::chrono::steady_clock::time_point const& deadline) noexcept {
  // Announce the sleep first, then look for work once more: a peer that queued work after our
  // last look either sees us sleeping (and wakes us) or we see its work here.
  sleeping_.store(true);
  pool_.sleepers.fetch_add(1);
  bool work_elsewhere = false;
  {
    std::shared_lock members(pool_.members_mutex);
    for (StealingAlgorithm* peer : pool_.members) {
      if (peer != nullptr && peer != this && peer->has_stealable()) {
        work_elsewhere = true;
        break;
      }
    }
  }
  if (!work_elsewhere) {
    std::unique_lock lock(sleep_mutex_);
    if (deadline == std::chrono::steady_clock::time_point::max()) {
      wake_.wait(lock, [this] { return notified_; });
    } else {
      wake_.wait_until(lock, deadline, [this] { return notified_; });
    }
    notified_ = false;
  }
  pool_.sleepers.fetch_sub(1);
  sleeping_.store(false);
}

void StealingAlgorithm::notify() noexcept {
  // Signalled under the lock: once this thread's scheduler has been woken it may finish and
  // destroy this algorithm, which it cannot do while we hold its mutex.
  std::lock_guard lock(sleep_mutex_);
  notified_ = true;
  wake_.notify_one();
}

void StealingAlgorithm::wake_a_sleeper() noexcept {
  std::shared_lock members(pool_.members_mutex);
  const std::size_t n = pool_.members.size();
  for (std::size_t step = 1; step < n; ++step) {
    StealingAlgorithm* peer = pool_.members[(index_ + step) % n];
    if (peer != nullptr && peer->sleeping_.load()) {
      peer->notify();
      return;
    }
  }
}

}  // namespace hetcache::runtime
