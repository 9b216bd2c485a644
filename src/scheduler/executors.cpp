#include "scheduler/executors.hpp"

#include <hetcache/error.hpp>

#include <tbb/parallel_for.h>

#include <algorithm>

namespace hetcache::scheduler {
namespace {

// Runs body(first, count) for each chunk of chunk_keys of n keys across the TBB arena.
template <typename Body>
void parallel_chunks(std::size_t n, std::size_t chunk_keys, const Body& body) {
  const std::size_t chunk = std::max<std::size_t>(1, chunk_keys);
  tbb::parallel_for(std::size_t{0}, (n + chunk - 1) / chunk, [&](std::size_t c) {
    const std::size_t first = c * chunk;
    body(first, std::min(chunk, n - first));
  });
}

}  // namespace

std::vector<std::uint8_t> get_batch_on(Tier tier, EmbeddingCache& cache,
                                       std::span<const std::string> keys, MutableMatrixView out,
                                       std::size_t chunk_keys) {
  switch (tier) {
    case Tier::Sequential:
      return cache.get_batch(keys, out);
    case Tier::Fiber:
      return cache.get_batch_async(keys, out).get();
    case Tier::Cpu: {
      if (out.rows() != keys.size() || out.dim() != cache.dim()) return cache.get_batch(keys, out);
      std::vector<std::uint8_t> found(keys.size());
      parallel_chunks(keys.size(), chunk_keys, [&](std::size_t first, std::size_t n) {
        MutableMatrixView rows(out.data() + first * out.stride(), n, out.dim(), out.stride());
        const auto part = cache.get_batch(keys.subspan(first, n), rows);
        std::copy(part.begin(), part.end(), found.begin() + static_cast<std::ptrdiff_t>(first));
      });
      return found;
    }
    case Tier::Gpu:
      break;
  }
  throw Error(ErrorCode::Unsupported, "get_batch runs on sequential, fiber or cpu, not gpu");
}

void put_batch_on(Tier tier, EmbeddingCache& cache, std::span<const std::string> keys,
                  MatrixView values, std::size_t chunk_keys, Ttl ttl) {
  switch (tier) {
    case Tier::Sequential:
      cache.put_batch(keys, values, ttl);
      return;
    case Tier::Fiber:
      cache.put_batch_async(keys, values, ttl).get();
      return;
    case Tier::Cpu:
      // The whole batch is checked before any chunk writes: bad input changes nothing.
      cache.check_put_batch(keys, values);
      parallel_chunks(keys.size(), chunk_keys, [&](std::size_t first, std::size_t n) {
        cache.put_batch(
            keys.subspan(first, n),
            MatrixView(values.data() + first * values.stride(), n, values.dim(), values.stride()),
            ttl);
      });
      return;
    case Tier::Gpu:
      break;
  }
  throw Error(ErrorCode::Unsupported, "put_batch runs on sequential, fiber or cpu, not gpu");
}

}  // namespace hetcache::scheduler
