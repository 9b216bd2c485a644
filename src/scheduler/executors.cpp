#include "scheduler/executors.hpp"

#include <hetcache/error.hpp>

#include <tbb/parallel_for.h>

#include <algorithm>

namespace hetcache::scheduler {

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
      const std::size_t chunk = std::max<std::size_t>(1, chunk_keys);
      const std::size_t chunks = (keys.size() + chunk - 1) / chunk;
      tbb::parallel_for(std::size_t{0}, chunks, [&](std::size_t c) {
        const std::size_t first = c * chunk, n = std::min(chunk, keys.size() - first);
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
    case Tier::Cpu: {
      // The whole batch is checked before any chunk writes: bad input changes nothing.
      cache.check_put_batch(keys, values);
      const std::size_t chunk = std::max<std::size_t>(1, chunk_keys);
      const std::size_t chunks = (keys.size() + chunk - 1) / chunk;
      tbb::parallel_for(std::size_t{0}, chunks, [&](std::size_t c) {
        const std::size_t first = c * chunk, n = std::min(chunk, keys.size() - first);
        cache.put_batch(
            keys.subspan(first, n),
            MatrixView(values.data() + first * values.stride(), n, values.dim(), values.stride()),
            ttl);
      });
      return;
    }
    case Tier::Gpu:
      break;
  }
  throw Error(ErrorCode::Unsupported, "put_batch runs on sequential, fiber or cpu, not gpu");
}

}  // namespace hetcache::scheduler
