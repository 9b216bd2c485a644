// detail::Completion: a fiber of a Resources waiting here suspends on a Boost.Fiber condition
// variable (its thread runs other fibers); any other thread blocks on a std::condition_variable.
//
// Plain threads stay off Boost.Fiber on purpose: a Boost.Fiber wait would give the thread a
// scheduler of its own (round_robin), which its waker notifies *after* unlocking -- so a waiter
// that wakes, returns and exits can destroy that scheduler's condition variable while the waker is
// still inside notify (ThreadSanitizer caught it with our TSan-visible Boost build).
#include <hetcache/future.hpp>

#include <boost/fiber/condition_variable.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "runtime/fiber_thread.hpp"

namespace hetcache::detail {

struct Completion::Impl {
  // One std::mutex guards `done` for both kinds of waiter (never held across a suspension: a wait
  // releases it first); ThreadSanitizer sees it, unlike Boost.Fiber's own spinlocks.
  mutable std::mutex mutex;
  mutable boost::fibers::condition_variable_any fiber_waiters;
  mutable std::condition_variable thread_waiters;
  std::atomic<bool> done{false};
  std::vector<std::function<void()>> callbacks;  // on_set's, until set() runs them
};

namespace {
void run_callback(const std::function<void()>& fn) noexcept {
  try {
    fn();
  } catch (...) {  // documented: a callback's exception is dropped, the completion still counts
  }
}
}  // namespace

Completion::Completion() : impl_(std::make_unique<Impl>()) {}
Completion::~Completion() = default;

void Completion::set() noexcept {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->done.load(std::memory_order_relaxed)) return;
    impl_->done.store(true, std::memory_order_release);
    callbacks.swap(impl_->callbacks);
  }
  impl_->fiber_waiters.notify_all();
  impl_->thread_waiters.notify_all();
  for (const auto& fn : callbacks) run_callback(fn);
}

void Completion::on_set(std::function<void()> fn) {
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->done.load(std::memory_order_relaxed)) {
      impl_->callbacks.push_back(std::move(fn));
      return;
    }
  }
  run_callback(fn);
}

bool Completion::is_set() const noexcept { return impl_->done.load(std::memory_order_acquire); }

void Completion::wait() const {
  if (is_set()) return;
  std::unique_lock lock(impl_->mutex);
  const auto done = [this] { return is_set(); };
  if (runtime_detail::on_fiber_thread()) {
    impl_->fiber_waiters.wait(lock, done);
  } else {
    impl_->thread_waiters.wait(lock, done);
  }
}

bool Completion::wait_for(std::chrono::nanoseconds timeout) const {
  if (is_set()) return true;
  std::unique_lock lock(impl_->mutex);
  const auto done = [this] { return is_set(); };
  if (runtime_detail::on_fiber_thread()) return impl_->fiber_waiters.wait_for(lock, timeout, done);
  return impl_->thread_waiters.wait_for(lock, timeout, done);
}

}  // namespace hetcache::detail
