// Private: how much of a blocking store's read is spent waiting off the CPU (a disk, a network)
// rather than computing (a RocksDB whose blocks sit in the page cache), learned from the calling
// thread's own chunks of the Fiber tier's read (io_chunks.hpp), and how many I/O threads that read
// should ask to help: as many as keep the cores busy, cores / (1 - waiting share) threads in all
// (the usual pool-sizing rule), between the cores and the I/O pool's size. Four I/O threads beside
// the caller on 2 vCPUs made a page-cache RocksDB read of 200 keys 1.3x the arena's; one made it
// 1.1x (bench/results/cold-start-2026-12-04-d.md).
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>

namespace hetcache::cache {

class ReadWaits {
 public:
  // What one thread had run and waited at an instant.
  struct Reading {
    std::chrono::steady_clock::time_point at;
    double cpu_us = 0.0;   // the thread's user + system time
    long voluntary = 0;    // switches away to wait (I/O, a lock, a condition)
    long involuntary = 0;  // switches away by preemption
  };
  static Reading now() noexcept {
    Reading r;
    r.at = std::chrono::steady_clock::now();
#if defined(RUSAGE_THREAD)
    rusage u{};
    if (getrusage(RUSAGE_THREAD, &u) == 0) {
      r.cpu_us = 1e6 * static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
                 static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
      r.voluntary = u.ru_nvcsw;
      r.involuntary = u.ru_nivcsw;
    }
#endif
    return r;
  }

  // The calling thread ran chunks of a read from `before` to `after`: its time off the CPU,
  // counted as waiting in the proportion of its voluntary switches (the rest was preemption, which
  // more threads would only make worse), teaches the waiting share (an EWMA, weight 1/4; two
  // readers finishing at once may lose one of their updates, which the next read makes up).
  void observe(const Reading& before, const Reading& after) noexcept {
    const double wall_us = std::chrono::duration<double, std::micro>(after.at - before.at).count();
    if (!(wall_us > 0.0)) return;
    const long voluntary = after.voluntary - before.voluntary;
    const long involuntary = after.involuntary - before.involuntary;
    const double off_cpu_us = std::max(0.0, wall_us - (after.cpu_us - before.cpu_us));
    const double waited_us = voluntary <= 0
                                 ? 0.0
                                 : off_cpu_us * static_cast<double>(voluntary) /
                                       static_cast<double>(voluntary + std::max(0L, involuntary));
    const double share = std::clamp(waited_us / wall_us, 0.0, 1.0);
    const double old = share_.load(std::memory_order_relaxed);
    share_.store(old + kWeight * (share - old), std::memory_order_relaxed);
  }

  // The waiting share learned so far, in [0, 1]; 0 before any read (reads that compute).
  double share() const noexcept { return share_.load(std::memory_order_relaxed); }

  // I/O threads to ask beside the calling thread: cores / (1 - share) threads in all, at least
  // the cores (cores - 1 helpers) and at most the calling thread plus the whole I/O pool.
  std::size_t helpers(std::size_t cores, std::size_t io_threads) const noexcept {
    cores = std::max<std::size_t>(cores, 1);
    const double idle = std::max(1.0 - share(), 1.0 / static_cast<double>(io_threads + 1));
    const auto threads = static_cast<std::size_t>(std::lround(static_cast<double>(cores) / idle));
    return std::min(io_threads, std::max(threads, cores) - 1);
  }

 private:
  static constexpr double kWeight = 0.25;
  std::atomic<double> share_{0.0};
};

}  // namespace hetcache::cache
