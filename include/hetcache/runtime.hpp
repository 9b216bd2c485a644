#pragma once
// hetcache::Runtime: the threads that asynchronous work runs on, one set per process, shared by
// every cache and engine.
//
//   fiber pool : `fiber_threads` threads running Boost.Fiber fibers with work stealing. Async cache
//                calls run here as many small fibers; a fiber never blocks its thread: it waits on
//                futures, which suspend only the fiber.
//   I/O pool   : `io_threads` plain threads for calls that block (RocksDB reads and writes, user
//                embed functions). A fiber hands such a call over and waits on its future.
//   CPU arena  : a oneTBB arena of `cpu_threads` for compute, entered by enqueue (never a blocking
//                execute from a fiber).
//
// Any thread, fiber or not, may submit work and wait on the future. Exceptions propagate through
// the future. The destructor stops taking work, lets all accepted work finish, and joins every
// thread; work submitted after that fails with Error(Unsupported).

#include <hetcache/future.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace hetcache {

struct RuntimeOptions {
  std::size_t fiber_threads = 0;  // 0: one per hardware thread
  std::size_t io_threads = 4;     // blocking store calls run here; must be >= 1
  std::size_t cpu_threads = 0;    // the TBB arena's concurrency; 0: one per hardware thread
  // Each fiber's stack. Fibers run cache code only (stores and user callbacks run on the I/O pool),
  // so a small stack suffices; raise it for deep callbacks submitted with submit().
  std::size_t fiber_stack_bytes = std::size_t{64} << 10;
};

struct RuntimeStats {
  std::size_t fiber_threads = 0, io_threads = 0, cpu_threads = 0;
  std::uint64_t fibers_started = 0;  // fibers run so far
  std::uint64_t io_calls = 0;        // calls run on the I/O pool
  std::uint64_t cpu_calls = 0;       // calls run in the CPU arena
  std::uint64_t steals = 0;          // fibers a thread took from another thread's queue
};

class Runtime {
 public:
  // Throws Error(InvalidArgument) for io_threads == 0 or a stack under 16 KiB.
  explicit Runtime(RuntimeOptions options = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // The process-wide runtime with default options, created on first use. Caches without an
  // explicit runtime use it.
  static std::shared_ptr<Runtime> shared();

  // Runs fn on a new fiber of the pool.
  template <typename F>
  auto submit(F&& fn) -> Future<std::invoke_result_t<std::decay_t<F>&>> {
    return run_on(&Runtime::post_fiber, std::forward<F>(fn));
  }
  // Runs fn on an I/O thread (for calls that block).
  template <typename F>
  auto submit_io(F&& fn) -> Future<std::invoke_result_t<std::decay_t<F>&>> {
    return run_on(&Runtime::post_io, std::forward<F>(fn));
  }
  // Runs fn as a task in the CPU arena.
  template <typename F>
  auto submit_cpu(F&& fn) -> Future<std::invoke_result_t<std::decay_t<F>&>> {
    return run_on(&Runtime::post_cpu, std::forward<F>(fn));
  }

  // True on a thread of this runtime's fiber pool (inside one of its fibers).
  bool in_fiber_pool() const noexcept;
  RuntimeStats stats() const;

 private:
  using Task = std::function<void()>;
  void post_fiber(Task task);
  void post_io(Task task);
  void post_cpu(Task task);

  template <typename F>
  auto run_on(void (Runtime::*post)(Task), F&& fn)
      -> Future<std::invoke_result_t<std::decay_t<F>&>> {
    using R = std::invoke_result_t<std::decay_t<F>&>;
    // std::function needs a copyable callable: the promise and fn live in a shared box.
    struct Box {
      std::decay_t<F> fn;
      Promise<R> promise;
    };
    auto box = std::make_shared<Box>(Box{std::forward<F>(fn), Promise<R>()});
    Future<R> future = box->promise.get_future();
    (this->*post)([box] {
      try {
        if constexpr (std::is_void_v<R>) {
          box->fn();
          box->promise.set_value();
        } else {
          box->promise.set_value(box->fn());
        }
      } catch (...) {
        box->promise.set_exception(std::current_exception());
      }
    });
    return future;
  }

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hetcache
