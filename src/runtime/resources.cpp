// src/runtime owns every thread and device the library runs work on: the fiber pool
// (StealingAlgorithm threads), the I/O thread pool, the one TBB arena and the one GPU context
// (Resources). It decides nothing about placement (src/scheduler does) and includes no cache or
// scheduler code; compute reaches the arena and the GPU tier through resources_core.hpp.
#include <hetcache/detail/resource_counts.hpp>
#include <hetcache/error.hpp>
#include <hetcache/resources.hpp>

#include <oneapi/tbb/task_arena.h>
#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/fixedsize_stack.hpp>
#include <boost/fiber/operations.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/asan_fiber.hpp"
#include "runtime/fiber_thread.hpp"
#include "runtime/resources_core.hpp"
#include "runtime/stealing_algorithm.hpp"

namespace hetcache {
namespace {

std::size_t or_cores(std::size_t n) {
  if (n != 0) return n;
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

Error stopped_error(const char* what) {
  return Error(ErrorCode::Unsupported,
               std::string("runtime is shutting down; cannot accept more ") + what + " work");
}

// Which pool the current thread belongs to. Read only when a fiber is spawned, never held across a
// suspension; and every thread of a pool stores the same value, so a fiber that migrates between
// the pool's threads reads the same pool either way.
thread_local const void* current_fiber_pool = nullptr;

// What resource_counts() reports: every arena and GPU tier is made by a ResourcesCore.
std::atomic<std::uint64_t> cpu_arenas_made{0}, gpu_tiers_made{0};

void validate(const ResourcesOptions& options) {
  auto invalid = [](const std::string& what) { throw Error(ErrorCode::InvalidArgument, what); };
  if (options.io_threads == 0) invalid("io_threads must be >= 1");
  if (options.cpu_threads > 4096)
    invalid("cpu_threads must be <= 4096, got " + std::to_string(options.cpu_threads));
  if (options.fiber_stack_bytes < (std::size_t{16} << 10))
    invalid("fiber_stack_bytes must be >= 16384, got " + std::to_string(options.fiber_stack_bytes));
  if (options.gpu.device < 0)
    invalid("gpu.device must be >= 0, got " + std::to_string(options.gpu.device));
}

}  // namespace

namespace detail {

ResourceCounts resource_counts() noexcept {
  return {cpu_arenas_made.load(std::memory_order_relaxed),
          gpu_tiers_made.load(std::memory_order_relaxed)};
}

ResourcesCore::ResourcesCore(std::size_t threads, const GpuOptions& gpu)
    : cpu_threads(threads), arena(static_cast<int>(threads)), gpu_options(gpu) {
  cpu_arenas_made.fetch_add(1, std::memory_order_relaxed);
}

gpu::GpuTier& ResourcesCore::gpu() const {
  std::call_once(gpu_once_, [this] {
    gpu_ = gpu::make_gpu_tier(gpu_options);
    gpu_tiers_made.fetch_add(1, std::memory_order_relaxed);
  });
  return *gpu_;
}

gpu::GpuTier* ResourcesCore::available_gpu() const noexcept {
  try {
    gpu::GpuTier& tier = gpu();
    return tier.available() ? &tier : nullptr;
  } catch (...) {
    return nullptr;
  }
}

}  // namespace detail

bool runtime_detail::on_fiber_thread() noexcept { return current_fiber_pool != nullptr; }

struct Resources::Impl {
  ResourcesOptions options;

  // --- fiber pool ---
  runtime::StealingPool stealing;
  std::vector<std::thread> fiber_threads;
  // std::mutex + fiber-aware condition variables: see completion.cpp for why not a fiber mutex.
  std::mutex inbox_mutex;  // tasks from threads outside the pool
  boost::fibers::condition_variable_any inbox_signal;
  std::deque<Task> inbox;
  bool stopping = false;  // guarded by inbox_mutex
  std::mutex live_mutex;
  boost::fibers::condition_variable_any all_done;
  std::size_t live_fibers = 0;  // accepted and not finished; guarded by live_mutex
  std::atomic<std::uint64_t> fibers_started{0};

  // --- I/O pool ---
  std::vector<std::thread> io_threads;
  std::mutex io_mutex;
  std::condition_variable io_signal;
  std::deque<Task> io_queue;
  bool io_stopping = false;
  std::atomic<std::uint64_t> io_calls{0};

  // --- CPU arena and GPU context ---
  detail::ResourcesCore core;
  std::mutex cpu_mutex;
  std::condition_variable cpu_idle;
  std::size_t cpu_pending = 0;
  bool cpu_stopping = false;
  std::atomic<std::uint64_t> cpu_calls{0};

  explicit Impl(const ResourcesOptions& opts)
      : options(opts),
        stealing(or_cores(opts.fiber_threads)),
        core(or_cores(opts.cpu_threads), opts.gpu) {
    options.fiber_threads = or_cores(options.fiber_threads);
    options.cpu_threads = or_cores(options.cpu_threads);
  }

  void spawn_fiber(Task task) {
    fibers_started.fetch_add(1, std::memory_order_relaxed);
    boost::fibers::fiber(std::allocator_arg,
                         boost::fibers::fixedsize_stack(options.fiber_stack_bytes),
                         [this, task = std::move(task)] {
                           const runtime_detail::FiberStackScope stack(
                               __builtin_frame_address(0), options.fiber_stack_bytes);
                           task();
                           fiber_finished();
                         })
        .detach();
  }

  void fiber_finished() {
    std::lock_guard lock(live_mutex);
    if (--live_fibers == 0) all_done.notify_all();
  }

  void fiber_thread_main(std::size_t index) {
    // Peers that have not registered yet (or have left) are skipped by stealing, so no
    // rendezvous is needed before fibers run.
    boost::fibers::use_scheduling_algorithm<runtime::StealingAlgorithm>(stealing, index);
    current_fiber_pool = this;
    for (;;) {
      Task task;
      {
        std::unique_lock lock(inbox_mutex);
        inbox_signal.wait(lock, [this] { return stopping || !inbox.empty(); });
        if (inbox.empty()) break;  // stopping, and everything accepted has been spawned
        task = std::move(inbox.front());
        inbox.pop_front();
      }
      spawn_fiber(std::move(task));
    }
    // Keep scheduling (and stealing) until every accepted fiber has finished.
    std::unique_lock lock(live_mutex);
    all_done.wait(lock, [this] { return live_fibers == 0; });
  }

  void io_thread_main() {
    for (;;) {
      Task task;
      {
        std::unique_lock lock(io_mutex);
        io_signal.wait(lock, [this] { return io_stopping || !io_queue.empty(); });
        if (io_queue.empty()) return;
        task = std::move(io_queue.front());
        io_queue.pop_front();
      }
      task();
    }
  }
};

Resources::Resources(ResourcesOptions options) {
  validate(options);
  impl_ = std::make_unique<Impl>(options);
  Impl& im = *impl_;
  for (std::size_t i = 0; i < im.options.fiber_threads; ++i) {
    im.fiber_threads.emplace_back([&im, i] { im.fiber_thread_main(i); });
  }
  for (std::size_t i = 0; i < im.options.io_threads; ++i) {
    im.io_threads.emplace_back([&im] { im.io_thread_main(); });
  }
}

Resources::~Resources() {
  Impl& im = *impl_;
  // Fibers first: they may still wait on I/O and CPU work, so those pools keep running meanwhile.
  {
    std::lock_guard lock(im.inbox_mutex);
    im.stopping = true;
  }
  im.inbox_signal.notify_all();
  for (auto& t : im.fiber_threads) t.join();
  {
    std::lock_guard lock(im.io_mutex);
    im.io_stopping = true;
  }
  im.io_signal.notify_all();
  for (auto& t : im.io_threads) t.join();
  std::unique_lock lock(im.cpu_mutex);
  im.cpu_stopping = true;
  im.cpu_idle.wait(lock, [&im] { return im.cpu_pending == 0; });
}

std::shared_ptr<Resources> Resources::shared() {
  // Never destroyed: its threads stay until the process exits, so work submitted from other
  // static destructors still has somewhere to run.
  static Resources* const resources = new Resources();
  return std::shared_ptr<Resources>(resources, [](Resources*) {});
}

void Resources::post_fiber(Task task) {
  Impl& im = *impl_;
  if (current_fiber_pool == &im) {
    // Work on behalf of accepted work: spawned here (and stealable), even while stopping.
    {
      std::lock_guard lock(im.live_mutex);
      ++im.live_fibers;
    }
    im.spawn_fiber(std::move(task));
    return;
  }
  {
    std::lock_guard lock(im.inbox_mutex);
    if (im.stopping) throw stopped_error("fiber");
    {
      std::lock_guard live(im.live_mutex);
      ++im.live_fibers;
    }
    im.inbox.push_back(std::move(task));
  }
  im.inbox_signal.notify_one();
}

void Resources::post_io(Task task) {
  Impl& im = *impl_;
  {
    std::lock_guard lock(im.io_mutex);
    if (im.io_stopping) throw stopped_error("I/O");
    im.io_queue.push_back(std::move(task));
  }
  im.io_calls.fetch_add(1, std::memory_order_relaxed);
  im.io_signal.notify_one();
}

void Resources::post_cpu(Task task) {
  Impl& im = *impl_;
  {
    std::lock_guard lock(im.cpu_mutex);
    if (im.cpu_stopping) throw stopped_error("CPU");
    ++im.cpu_pending;
  }
  im.cpu_calls.fetch_add(1, std::memory_order_relaxed);
  // enqueue returns at once; the task fulfils its promise from a TBB worker.
  im.core.arena.enqueue([&im, task = std::move(task)] {
    task();
    std::lock_guard lock(im.cpu_mutex);
    if (--im.cpu_pending == 0) im.cpu_idle.notify_all();
  });
}

const ResourcesOptions& Resources::options() const noexcept { return impl_->options; }
detail::ResourcesCore& Resources::core() const noexcept { return impl_->core; }

bool Resources::in_fiber_pool() const noexcept { return current_fiber_pool == impl_.get(); }

ResourcesStats Resources::stats() const {
  const Impl& im = *impl_;
  ResourcesStats s;
  s.fiber_threads = im.options.fiber_threads;
  s.io_threads = im.options.io_threads;
  s.cpu_threads = im.options.cpu_threads;
  s.fibers_started = im.fibers_started.load(std::memory_order_relaxed);
  s.io_calls = im.io_calls.load(std::memory_order_relaxed);
  s.cpu_calls = im.cpu_calls.load(std::memory_order_relaxed);
  s.steals = im.stealing.steals.load(std::memory_order_relaxed);
  return s;
}

}  // namespace hetcache
