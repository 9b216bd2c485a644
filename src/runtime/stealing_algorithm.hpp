// Private: a work-stealing Boost.Fiber scheduling algorithm whose threads form one pool.
//
// Why not boost::fibers::algo::work_stealing: in Boost 1.74 it keeps its registry of schedulers,
// its start barrier and its thread count in function and class statics, so a process can create
// exactly one such pool, once (a second Resources, or a Resources created after one was destroyed,
// indexes past the registry). This algorithm keeps the same design -- per-thread ready queues,
// idle threads steal unpinned fibers from peers, detach on awaken / attach on pick -- with its
// registry in a per-pool StealingPool, and it wakes a sleeping peer when work arrives so stolen
// work actually runs in parallel (Boost's version only wakes a thread for its own work).
//
// ThreadSanitizer: Debian's Boost.Context 1.74 switches stacks without TSan annotations (they came
// to Boost in 1.76, for ucontext only), so fibers that switch and migrate corrupt TSan's shadow
// stacks; tests that run fibers cannot run under TSan with these packages (see README).
#pragma once

#include <boost/fiber/algo/algorithm.hpp>
#include <boost/fiber/context.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <vector>

namespace hetcache::runtime {

class StealingAlgorithm;

// What the threads of one pool share. A thread's algorithm joins (fills its slot) when the thread
// starts and leaves (its slot becomes null) when it exits, while peers may be looking for work;
// members_mutex orders the two, and peers skip empty slots.
struct StealingPool {
  explicit StealingPool(std::size_t threads) : members(threads, nullptr) {}
  std::shared_mutex members_mutex;
  std::vector<StealingAlgorithm*> members;
  std::atomic<std::uint32_t> sleepers{0};
  std::atomic<std::uint64_t> steals{0};
};

class StealingAlgorithm final : public boost::fibers::algo::algorithm {
 public:
  StealingAlgorithm(StealingPool& pool, std::size_t index);
  ~StealingAlgorithm() override;
  StealingAlgorithm(const StealingAlgorithm&) = delete;
  StealingAlgorithm& operator=(const StealingAlgorithm&) = delete;

  void awakened(boost::fibers::context* ctx) noexcept override;
  boost::fibers::context* pick_next() noexcept override;
  bool has_ready_fibers() const noexcept override;
  void suspend_until(std::chrono::steady_clock::time_point const& deadline) noexcept override;
  void notify() noexcept override;

 private:
  // Takes one unpinned fiber from the back of the queue (the one that waited least).
  boost::fibers::context* steal() noexcept;
  bool has_stealable() const noexcept;
  void wake_a_sleeper() noexcept;

  StealingPool& pool_;
  std::size_t index_;
  mutable std::mutex queue_mutex_;
  std::deque<boost::fibers::context*> ready_;
  std::size_t unpinned_ready_ = 0;

  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  bool notified_ = false;
  std::atomic<bool> sleeping_{false};
};

}  // namespace hetcache::runtime
