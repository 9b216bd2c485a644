#pragma once
// hetcache::Future<T>: the result of asynchronous work on a Resources.
//
// Waiting is fiber-aware: inside a fiber of the runtime, get() / wait() suspend only that fiber and
// its thread goes on running other fibers; on any other thread they block the thread. An exception
// thrown by the work is rethrown by get().

#include <chrono>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace hetcache {

namespace detail {

// A one-shot event that fibers and threads can wait for (src/runtime/completion.cpp).
class Completion {
 public:
  Completion();
  ~Completion();
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;

  // Marks the event done and wakes every waiter; only the first call counts.
  void set() noexcept;
  bool is_set() const noexcept;
  void wait() const;
  // False when the time ran out first.
  bool wait_for(std::chrono::nanoseconds timeout) const;
  // Calls fn once the event is set: at once on this thread when it already is, else on the
  // thread that sets it, after the waiters are woken. fn must not throw (what it throws is
  // dropped) and should be short: it runs on a pool's thread.
  void on_set(std::function<void()> fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

template <typename T>
struct FutureState {
  Completion done;
  std::optional<T> value;
  std::exception_ptr error;
};
template <>
struct FutureState<void> {
  Completion done;
  std::exception_ptr error;
};

}  // namespace detail

template <typename T>
class Promise;

template <typename T>
class Future {
 public:
  Future() = default;

  // False for a default-constructed future and after get().
  bool valid() const noexcept { return state_ != nullptr; }
  bool ready() const noexcept { return state_ && state_->done.is_set(); }
  void wait() const { state_->done.wait(); }
  template <typename Rep, typename Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
    return state_->done.wait_for(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
  }

  // Calls fn (no arguments) once the future is ready: at once on this thread when it already is,
  // else on the thread that completes the work (a fiber thread, the arena, the I/O pool). For
  // handing the result to an event loop: fn should only schedule the get() elsewhere, must not
  // block or throw, and must not call get() itself when it may run on a fiber thread.
  void on_ready(std::function<void()> fn) const { state_->done.on_set(std::move(fn)); }

  // Waits, then returns the value or rethrows the work's exception. Call once.
  T get() {
    auto state = std::move(state_);
    state->done.wait();
    if (state->error) std::rethrow_exception(state->error);
    if constexpr (!std::is_void_v<T>) return std::move(*state->value);
  }

 private:
  friend class Promise<T>;
  explicit Future(std::shared_ptr<detail::FutureState<T>> state) : state_(std::move(state)) {}
  std::shared_ptr<detail::FutureState<T>> state_;
};

// The producing side of a Future. Used by hetcache internally and by code that adapts its own
// callbacks to futures; a promise destroyed unfulfilled fails its future with broken_promise.
template <typename T>
class Promise {
 public:
  Promise() : state_(std::make_shared<detail::FutureState<T>>()) {}
  Promise(Promise&&) noexcept = default;
  Promise& operator=(Promise&& other) noexcept {
    abandon();
    state_ = std::move(other.state_);
    return *this;
  }
  ~Promise() { abandon(); }

  Future<T> get_future() const { return Future<T>(state_); }

  template <typename... V>
  void set_value(V&&... value) {
    if constexpr (!std::is_void_v<T>) state_->value.emplace(std::forward<V>(value)...);
    state_->done.set();
  }
  void set_exception(std::exception_ptr error) {
    state_->error = std::move(error);
    state_->done.set();
  }
  // Runs fn and fulfils the promise with its result, or with the exception it threw.
  template <typename F>
  void fulfil_with(F& fn) noexcept {
    try {
      if constexpr (std::is_void_v<T>) {
        fn();
        set_value();
      } else {
        set_value(fn());
      }
    } catch (...) {
      set_exception(std::current_exception());
    }
  }

 private:
  void abandon() noexcept {
    if (state_ && !state_->done.is_set()) {
      state_->error = std::make_exception_ptr(std::future_error(std::future_errc::broken_promise));
      state_->done.set();
    }
  }
  std::shared_ptr<detail::FutureState<T>> state_;
};

}  // namespace hetcache
