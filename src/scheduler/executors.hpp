// Private: what each tier means for a cache batch -- Sequential: the calling thread; Fiber: the
// cache's async form (chunks of optimal_batch_size as concurrent fibers); Cpu: chunks of
// chunk_keys across the TBB arena, each a synchronous batch call (a put batch is checked whole
// first, so bad input changes nothing).
#pragma once

#include <hetcache/cache.hpp>
#include <hetcache/types.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace hetcache::scheduler {

std::vector<std::uint8_t> get_batch_on(Tier tier, EmbeddingCache& cache,
                                       std::span<const std::string> keys, MutableMatrixView out,
                                       std::size_t chunk_keys);
void put_batch_on(Tier tier, EmbeddingCache& cache, std::span<const std::string> keys,
                  MatrixView values, std::size_t chunk_keys, Ttl ttl);

}  // namespace hetcache::scheduler
