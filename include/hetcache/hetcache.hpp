#pragma once
// Umbrella header: everything in the public API.

#include <hetcache/cache.hpp>
#include <hetcache/compact.hpp>
#include <hetcache/error.hpp>
#include <hetcache/matrix.hpp>
#include <hetcache/placement.hpp>
#include <hetcache/repair.hpp>
#include <hetcache/resources.hpp>
#include <hetcache/scheduler.hpp>
#include <hetcache/similarity.hpp>
#include <hetcache/types.hpp>

namespace hetcache {
// Library version as "MAJOR.MINOR.PATCH".
const char* version() noexcept;
// True when the library was built with the CUDA GPU tier (it still needs a device to use it).
bool built_with_cuda() noexcept;
}  // namespace hetcache
