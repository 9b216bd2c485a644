// Private: how one GPU search leaves the device, whichever way it ends -- plain C++, so the host
// suite checks it (tests/gpu/search_exit_test.cpp).
//
// A search runs its tiles on two streams. An error raised for one stream's tile leaves the other
// stream's tile running, still reading a pinned buffer and writing scratch that the next search is
// handed again, so every exit first waits for both streams (settle). Then:
//   - out of device memory or of the scratch budget: the CPU tier answers (nullopt);
//   - the device is lost (a sticky error: every later CUDA call fails the same way): the tier
//     stops using it, with the reason, and this search and every later one run on the CPU;
//   - any other error is rethrown: a fault to report, not to hide.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "compute/gpu/gpu_tier.hpp"

namespace hetcache::gpu {

// What the guard reports to the tier besides the result.
struct SearchExit {
  bool out_of_memory = false;
  std::optional<std::string> device_lost;  // the sticky error, when the device is gone
};

// Runs search(); whatever happens, settle() (noexcept: waits for both streams) runs before the
// result or the error leaves. lost() (noexcept) names the sticky error when the device is gone,
// else nullopt.
template <typename Result, typename Search, typename Settle, typename Lost>
std::optional<Result> settled_search(Search&& search, Settle&& settle, Lost&& lost,
                                     SearchExit& exit) {
  try {
    Result result = search();
    settle();
    return result;
  } catch (const GpuOutOfMemory&) {
    settle();
    exit.out_of_memory = true;
    return std::nullopt;
  } catch (...) {
    settle();
    exit.device_lost = lost();
    if (exit.device_lost) return std::nullopt;
    throw;
  }
}

}  // namespace hetcache::gpu
