// Private: a batch of blocking store calls cut into chunks that the calling thread and threads of
// the I/O pool claim one at a time (the Fiber tier's synchronous read of a store whose reads
// block).
#pragma once

#include <hetcache/resources.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>

#include "cache/read_waits.hpp"

namespace hetcache::cache {

// Runs body(first, count) for each chunk of `chunk` of n, chunks claimed in order by this thread
// and by up to `helpers` tasks of the I/O pool; returns when every chunk has run, then rethrows the
// first failure. The calling thread works too, and waits only for chunks a helper claimed: a helper
// that wakes late (the I/O pool sleeps on a condition variable, tens of microseconds on a VM) or
// finds the pool busy claims nothing, and this thread has run the chunks meanwhile. Not for a
// fiber: it blocks its thread. With `waits`, what this thread's own chunks waited off the CPU
// teaches it (read_waits.hpp).
template <typename Body>
void claimed_chunks_on_io(Resources& resources, std::size_t n, std::size_t chunk,
                          std::size_t helpers, const Body& body, ReadWaits* waits = nullptr) {
  if (n == 0) return;
  chunk = std::max<std::size_t>(chunk, 1);
  const std::size_t chunks = (n + chunk - 1) / chunk;
  // Shared with the helpers, which may start after this call returned (they then claim nothing).
  struct State {
    std::size_t chunks;
    std::atomic<std::size_t> next{0};
    std::mutex mutex;
    std::condition_variable all_done;
    std::size_t done = 0;  // guarded by mutex
    std::exception_ptr failure;
  };
  auto state = std::make_shared<State>();
  state->chunks = chunks;
  // Returns how many chunks it ran.
  const auto claim_and_run = [chunk, n, &body](State& s) {
    for (std::size_t ran = 0;; ++ran) {
      const std::size_t c = s.next.fetch_add(1, std::memory_order_relaxed);
      if (c >= s.chunks) return ran;
      std::exception_ptr failure;
      try {
        body(c * chunk, std::min(chunk, n - c * chunk));
      } catch (...) {
        failure = std::current_exception();
      }
      std::lock_guard lock(s.mutex);
      if (failure && !s.failure) s.failure = failure;
      if (++s.done == s.chunks) s.all_done.notify_all();
    }
  };
  try {
    for (std::size_t h = 0; h < std::min(helpers, chunks - 1); ++h) {
      // body is only called for a claimed chunk, and this call waits for every claimed chunk:
      // the reference stays valid for as long as a helper can use it.
      resources.submit_io([state, claim_and_run] { claim_and_run(*state); });
    }
  } catch (const std::exception&) {
    // The I/O pool is stopping: the helpers sent so far and this thread run the chunks (a throw
    // here would leave them running with body gone).
  }
  const ReadWaits::Reading before = waits != nullptr ? ReadWaits::now() : ReadWaits::Reading{};
  if (claim_and_run(*state) > 0 && waits != nullptr) waits->observe(before, ReadWaits::now());
  std::unique_lock lock(state->mutex);
  state->all_done.wait(lock, [&] { return state->done == state->chunks; });
  if (state->failure) std::rethrow_exception(state->failure);
}

}  // namespace hetcache::cache
