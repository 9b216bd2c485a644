// detail::Completion on a Boost.Fiber condition variable: a fiber waiting here suspends (its thread
// runs other fibers); a plain thread waiting here blocks in its own Boost.Fiber scheduler.
#include <hetcache/future.hpp>

#include <boost/fiber/condition_variable.hpp>

#include <atomic>
#include <mutex>

namespace hetcache::detail {

struct Completion::Impl {
  // A std::mutex (never held across a suspension: the wait releases it before suspending) with a
  // fiber-aware condition variable: the data is guarded by something ThreadSanitizer sees, as the
  // Boost.Fiber library is not instrumented and its own mutex is invisible to it.
  mutable std::mutex mutex;
  mutable boost::fibers::condition_variable_any done_signal;
  std::atomic<bool> done{false};
};

Completion::Completion() : impl_(std::make_unique<Impl>()) {}
Completion::~Completion() = default;

void Completion::set() noexcept {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->done.load(std::memory_order_relaxed)) return;
    impl_->done.store(true, std::memory_order_release);
  }
  impl_->done_signal.notify_all();
}

bool Completion::is_set() const noexcept { return impl_->done.load(std::memory_order_acquire); }

void Completion::wait() const {
  if (is_set()) return;
  std::unique_lock lock(impl_->mutex);
  impl_->done_signal.wait(lock, [this] { return is_set(); });
}

bool Completion::wait_for(std::chrono::nanoseconds timeout) const {
  if (is_set()) return true;
  std::unique_lock lock(impl_->mutex);
  return impl_->done_signal.wait_for(lock, timeout, [this] { return is_set(); });
}

}  // namespace hetcache::detail
