// Private: a batch cut into chunks that run as concurrent fibers of a Resources (the Fiber tier of
// the cache's batch calls).
#pragma once

#include <hetcache/resources.hpp>

#include <algorithm>
#include <cstddef>
#include <exception>
#include <vector>

namespace hetcache::cache {

// Runs body(first, count) for each chunk of n: chunk 0 on this fiber (or thread), the others as
// fibers of their own; waits for all, then rethrows the first failure.
template <typename Body>
void for_each_chunk(Resources& resources, std::size_t n, std::size_t chunk, Body body) {
  std::vector<Future<void>> others;
  for (std::size_t first = chunk; first < n; first += chunk) {
    const std::size_t count = std::min(chunk, n - first);
    others.push_back(resources.submit([&body, first, count] { body(first, count); }));
  }
  std::exception_ptr failure;
  try {
    body(0, std::min(chunk, n));
  } catch (...) {
    failure = std::current_exception();
  }
  for (auto& other : others) {
    try {
      other.get();
    } catch (...) {
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace hetcache::cache
