#pragma once
// hetcache::Resources: every thread and device the library runs work on, made once per process (or
// once per configuration a program wants) and handed to every engine, cache and scheduler; none of
// them builds pools of its own.
//
//   fiber pool : `fiber_threads` threads running Boost.Fiber fibers with work stealing. Async cache
//                calls run here as many small fibers; a fiber never blocks its thread: it waits on
//                futures, which suspend only the fiber.
//   I/O pool   : `io_threads` plain threads for calls that block (RocksDB reads and writes, user
//                embed functions). A fiber hands such a call over and waits on its future.
//   CPU arena  : one oneTBB arena of `cpu_threads` for compute: the Cpu tier's similarity kernels,
//                cache batches placed on the Cpu tier, and submit_cpu (entered by enqueue, never a
//                blocking execute from a fiber).
//   GPU context: one CUDA context, cuBLAS handle and scratch budget on `gpu.device`, opened the
//                first time something asks for the GPU tier (a CPU-only program never pays for
//                it); absent, with the reason, without CUDA or a device.
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
namespace detail {
struct ResourcesCore;  // the arena and the GPU context, for src/ (not API)
}

// The GPU tier's device. Without CUDA in the build or a device on the machine the tier reports
// itself absent (gpu_stats().reason says why) and everything runs on the CPU tiers.
struct GpuOptions {
  bool enable = true;  // false: nothing ever touches CUDA
  int device = 0;      // CUDA device ordinal; must be >= 0
  // Device memory the GPU tier allocates once, at its first search, in bytes: the cuBLAS
  // workspaces (up to 32 MiB per stream, at most an eighth of the budget each) and the scratch
  // (score tiles, staging, merge keys); 0 (the default) = a quarter of the memory free when the
  // context opens, at most 4 GiB. Uploaded candidate sets and a cache's device mirror come on top.
  // A search too large for it runs its queries in blocks; one that does not fit even one query
  // becomes an out-of-memory fallback to the CPU (counted in gpu_stats()).
  std::size_t memory_budget_bytes = 0;
};

struct ResourcesOptions {
  std::size_t fiber_threads = 0;  // 0: one per hardware thread
  // Blocking store calls run here; must be >= 1 (default 4). A sync read on the Fiber tier asks
  // for more of them than the cores only while its reads wait off the CPU.
  std::size_t io_threads = 4;
  std::size_t cpu_threads = 0;  // the TBB arena's concurrency; 0: one per hardware thread; <= 4096
  // Each fiber's stack. Fibers run cache code only (stores and user callbacks run on the I/O pool),
  // so a small stack suffices; raise it for deep callbacks submitted with submit().
  std::size_t fiber_stack_bytes = std::size_t{64} << 10;
  GpuOptions gpu{};
};

struct ResourcesStats {
  std::size_t fiber_threads = 0, io_threads = 0, cpu_threads = 0;
  std::uint64_t fibers_started = 0;  // fibers run so far
  std::uint64_t io_calls = 0;        // calls run on the I/O pool
  std::uint64_t cpu_calls = 0;       // calls run in the CPU arena
  std::uint64_t steals = 0;          // fibers a thread took from another thread's queue
};

class Resources {
 public:
  // Throws Error(InvalidArgument) naming the bad option: io_threads == 0, cpu_threads over 4096, a
  // stack under 16 KiB, a negative GPU device.
  explicit Resources(ResourcesOptions options = {});
  ~Resources();
  Resources(const Resources&) = delete;
  Resources& operator=(const Resources&) = delete;

  // The process-wide resources with default options, created on first use. Engines, caches and
  // schedulers given none use it.
  static std::shared_ptr<Resources> shared();

  // Runs fn on a new fiber of the pool.
  template <typename F>
  auto submit(F&& fn) -> Future<std::invoke_result_t<std::decay_t<F>&>> {
    return run_on(&Resources::post_fiber, std::forward<F>(fn));
  }
  // Runs fn on an I/O thread (for calls that block).
  template <typename F>
  auto submit_io(F&& fn) -> Future<std::invoke_result_t<std::decay_t<F>&>> {
    return run_on(&Resources::post_io, std::forward<F>(fn));
  }
  // Runs fn as a task in the CPU arena.
  template <typename F>
  auto submit_cpu(F&& fn) -> Future<std::invoke_result_t<std::decay_t<F>&>> {
    return run_on(&Resources::post_cpu, std::forward<F>(fn));
  }

  // True on a thread of this Resources' fiber pool (inside one of its fibers).
  bool in_fiber_pool() const noexcept;
  ResourcesStats stats() const;
  const ResourcesOptions& options() const noexcept;

  // Not API: the arena and the GPU context themselves (src/runtime/resources_core.hpp).
  detail::ResourcesCore& core() const noexcept;

 private:
  using Task = std::function<void()>;
  void post_fiber(Task task);
  void post_io(Task task);
  void post_cpu(Task task);

  template <typename F>
  auto run_on(void (Resources::*post)(Task), F&& fn)
      -> Future<std::invoke_result_t<std::decay_t<F>&>> {
    using R = std::invoke_result_t<std::decay_t<F>&>;
    // std::function needs a copyable callable: the promise and fn live in a shared box.
    struct Box {
      std::decay_t<F> fn;
      Promise<R> promise;
    };
    auto box = std::make_shared<Box>(Box{std::forward<F>(fn), Promise<R>()});
    Future<R> future = box->promise.get_future();
    (this->*post)([box] { box->promise.fulfil_with(box->fn); });
    return future;
  }

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hetcache
