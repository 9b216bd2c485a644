// Private: n items cut into chunks that run in parallel in a TBB arena (the Cpu tier of the
// cache's batch calls, and the memory store's search over its shards).
#pragma once

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstddef>

namespace hetcache::cache {

// Runs body(first, count) for each chunk of `chunk` of n keys in the arena, chunks in parallel;
// returns when all have run. A single chunk runs here, on the calling thread: there is nothing to
// run beside it, and entering the arena costs about 6% of a 10-key memory read (the cost model
// already treats one chunk as Sequential).
template <typename Body>
void arena_chunks(tbb::task_arena& arena, std::size_t n, std::size_t chunk, const Body& body) {
  if (n == 0) return;
  if (n <= chunk) {
    body(0, n);
    return;
  }
  arena.execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, (n + chunk - 1) / chunk, 1),
        [&](const tbb::blocked_range<std::size_t>& range) {
          for (std::size_t c = range.begin(); c != range.end(); ++c) {
            const std::size_t first = c * chunk;
            body(first, std::min(chunk, n - first));
          }
        },
        tbb::simple_partitioner());
  });
}

}  // namespace hetcache::cache
