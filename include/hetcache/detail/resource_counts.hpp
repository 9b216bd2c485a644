#pragma once
// Not API: how many CPU arenas and GPU tiers this process has made so far. Every arena and GPU
// context the library uses belongs to a Resources, so a program with one Resources sees 1 and 1
// (or 0 GPU tiers while nothing has asked for the GPU), however many engines, caches and schedulers
// it builds on it. The tests read these; they are cheap enough to leave on.

#include <cstdint>

namespace hetcache::detail {

struct ResourceCounts {
  std::uint64_t cpu_arenas = 0;  // oneTBB task arenas made by the library
  std::uint64_t gpu_tiers = 0;   // GPU tiers opened (absent ones included: one per attempt)
};
ResourceCounts resource_counts() noexcept;

}  // namespace hetcache::detail
