// Private to src/cache/memory: a shard's reader-writer lock whose readers write only their own
// cache line, so readers on different cores never slow each other down.
//
// std::shared_mutex keeps one reader count that every lock_shared and unlock_shared writes: two
// cores reading one shard pass that line back and forth on every get (~100 ns each time on this
// project's machines). Here a reader adds to one of kThreadStripes line-aligned counts, the one its
// thread owns (core/thread_stripe.hpp), and only reads the writer flag, which stays shared in every
// core's cache while no writer comes. A writer raises the flag, then waits for every count to
// drain: the price of the readers' freedom is a writer that reads 16 lines (writers hold the lock
// for one row copy or one batch's share of a shard, readers for one lookup or one batch's share).
//
// Writers are preferred: a reader that finds the flag raised steps back and waits, so a stream of
// readers cannot starve a put. That makes taking the shared lock twice in one thread a deadlock
// when a writer comes between (std::shared_mutex on glibc allows it); the store never does.
// Unlocked by the thread that locked it, as std::shared_mutex. Meets the Lockable and
// SharedLockable requirements used by std::unique_lock and std::shared_lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "core/thread_stripe.hpp"

namespace hetcache::cache {

class ShardLock {
 public:
  void lock_shared() noexcept {
    std::atomic<std::uint32_t>& readers = readers_[thread_stripe()].count;
    for (;;) {
      // Both seq_cst, as the writer's store of the flag and its loads of the counts: either this
      // reader sees the flag, or the writer sees this reader's count.
      readers.fetch_add(1, std::memory_order_seq_cst);
      if (writer_.load(std::memory_order_seq_cst) == 0) return;
      release(readers);
      writer_.wait(1, std::memory_order_acquire);
    }
  }
  void unlock_shared() noexcept { release(readers_[thread_stripe()].count); }

  void lock() noexcept {
    writers_.lock();
    writer_.store(1, std::memory_order_seq_cst);
    for (Stripe& stripe : readers_) {
      for (std::uint32_t n = stripe.count.load(std::memory_order_seq_cst); n != 0;
           n = stripe.count.load(std::memory_order_seq_cst)) {
        stripe.count.wait(n, std::memory_order_acquire);
      }
    }
  }
  void unlock() noexcept {
    writer_.store(0, std::memory_order_seq_cst);
    writer_.notify_all();
    writers_.unlock();
  }

 private:
  struct alignas(64) Stripe {
    std::atomic<std::uint32_t> count{0};
  };

  // A reader leaving wakes a writer that waits for its stripe to drain.
  void release(std::atomic<std::uint32_t>& readers) noexcept {
    if (readers.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        writer_.load(std::memory_order_seq_cst) != 0) {
      readers.notify_all();
    }
  }

  Stripe readers_[kThreadStripes];
  alignas(64) std::atomic<std::uint32_t> writer_{0};  // 1 while a writer holds or waits for it
  std::mutex writers_;                                // one writer at a time
};

}  // namespace hetcache::cache
