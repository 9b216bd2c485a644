// The cache's operations on the tier their placement chose: Sequential runs the read or write path
// here; Fiber hands the batch to the fiber forms (embedding_cache_async.cpp) and waits; Cpu cuts
// reads into chunks of optimal_batch_size keys across the Resources' TBB arena, and a write into
// one durable write batch followed by the memory store's copies in chunks there (search: shards
// in parallel there); Gpu searches the device mirror. Nothing here chooses a tier.
#include <algorithm>

#include "cache/cache_impl.hpp"
#include "cache/io_chunks.hpp"

namespace hetcache {
namespace {

Error not_on(const char* op, Tier tier, const char* tiers) {
  return Error(ErrorCode::Unsupported,
               std::string(op) + " runs on " + tiers + ", not " + std::string(to_string(tier)));
}

}  // namespace

std::vector<std::uint8_t> EmbeddingCache::Impl::get_batch_on(cache::PlacedOperation& op,
                                                             std::span<const std::string_view> keys,
                                                             MutableMatrixView out) {
  std::vector<std::uint8_t> found;
  switch (op.tier()) {
    case Tier::Sequential:
      found = read(keys, out, true);
      break;
    case Tier::Fiber: {
      found.assign(keys.size(), 0);
      std::vector<std::size_t> absent = read_memory_first(keys, out, found.data());
      if (absent.empty()) break;
      const std::size_t chunk = durable->read_chunk_keys(chunk_keys());
      if (absent.size() <= chunk) {
        // One chunk of misses: nothing to overlap, so no hop (as the cost model assumes).
        ReadCounts c;
        read_durable(keys, absent, out, found.data(), now_unix_ms(), c, /*on_fiber=*/false);
        count(c, absent.size());
        break;
      }
      if (durable->reads_block() && !resources->in_fiber_pool()) {
        // A caller outside the fiber pool may block: it and the I/O pool read the chunks, no
        // fiber between them (fibers would only hop each chunk on to an I/O thread).
        // As many threads as keep the cores busy: more only while reads wait off the CPU.
        const std::size_t helpers =
            read_waits.helpers(resources->core().cpu_threads, resources->options().io_threads);
        cache::claimed_chunks_on_io(
            *resources, absent.size(), chunk, helpers,
            [&](std::size_t first, std::size_t count) {
              ReadCounts c;
              read_durable(keys, std::span(absent).subspan(first, count), out, found.data(),
                           now_unix_ms(), c, /*on_fiber=*/false);
              this->count(c, count);
            },
            &read_waits);
        break;
      }
      found = read_durable_on_fibers({keys.begin(), keys.end()}, out, std::move(found),
                                     std::move(absent), nullptr)
                  .get();
      break;
    }
    case Tier::Cpu:
      found.assign(keys.size(), 0);
      cache::arena_chunks(resources->core().arena, keys.size(), chunk_keys(),
                          [&](std::size_t first, std::size_t n) {
                            const MutableMatrixView rows(out.data() + first * out.stride(), n,
                                                         out.dim(), out.stride());
                            const auto part = read(keys.subspan(first, n), rows, true);
                            std::copy(part.begin(), part.end(), found.begin() + first);
                          });
      break;
    case Tier::Gpu:
      throw not_on("get_batch", op.tier(), "sequential, fiber or cpu");
  }
  finish_batch(&op);
  return found;
}

void EmbeddingCache::Impl::put_batch_on(cache::PlacedOperation& op,
                                        std::span<const std::string_view> keys, MatrixView values,
                                        std::int64_t expiry_ms) {
  switch (op.tier()) {
    case Tier::Sequential:
      write(keys, values, expiry_ms);
      break;
    case Tier::Fiber:
      put_batch_on_fibers({keys.begin(), keys.end()}, values, expiry_ms, nullptr).get();
      break;
    case Tier::Cpu:
      write(keys, values, expiry_ms, /*parallel=*/true);
      break;
    case Tier::Gpu:
      throw not_on("put_batch", op.tier(), "sequential, fiber or cpu");
  }
  finish_batch(&op);
}

std::size_t EmbeddingCache::Impl::get_or_compute_on(cache::PlacedOperation& op,
                                                    std::span<const std::string_view> keys,
                                                    MutableMatrixView out, const EmbedFn& embed,
                                                    std::int64_t expiry_ms) {
  std::size_t computed = 0;
  switch (op.tier()) {
    case Tier::Sequential:
      computed = get_or_compute(keys, out, embed, expiry_ms);
      break;
    case Tier::Fiber:
      computed =
          get_or_compute_on_fibers({keys.begin(), keys.end()}, out, embed, expiry_ms, nullptr)
              .get();
      break;
    case Tier::Cpu:
      // In the arena (a thread already in it runs it at once; no task waits for another).
      resources->core().arena.execute(
          [&] { computed = get_or_compute(keys, out, embed, expiry_ms); });
      break;
    case Tier::Gpu:
      throw not_on("get_or_compute", op.tier(), "sequential, fiber or cpu");
  }
  op.finish({});
  return computed;
}

std::vector<std::vector<KeyHit>> EmbeddingCache::Impl::search_on(cache::PlacedOperation& op,
                                                                 MatrixView queries, std::size_t k,
                                                                 Metric metric) {
  const std::int64_t now = now_unix_ms();
  switch (op.tier()) {
    case Tier::Gpu:
      if (device_slabs == nullptr) {
        throw Error(ErrorCode::Unsupported,
                    "search on tier gpu needs the device mirror (CacheOptions.search_on_gpu and "
                    "a GPU: " +
                        resources->core().gpu().stats().reason + ")");
      }
      if (auto hits = device_slabs->search(memory, queries, k, metric, now)) {
        counters.local().gpu_searches.fetch_add(1, std::memory_order_relaxed);
        op.finish(scheduler::compute_execution(Tier::Gpu, engine()));
        return std::move(*hits);
      }
      // Out of device memory: the CPU answers, and the operation counts as what it was placed.
      return memory.search(engine(), queries, k, metric, now, Tier::Cpu);
    case Tier::Sequential:
    case Tier::Cpu: {
      auto hits = memory.storage() != StorageType::F32 && options.search_mode == ScoreMode::Exact
                      ? exact_compact_search(queries, k, metric, now, op.tier())
                      : memory.search(engine(), queries, k, metric, now, op.tier());
      op.finish(scheduler::compute_execution(op.tier(), engine()));
      return hits;
    }
    case Tier::Fiber:
      break;
  }
  throw not_on("search", op.tier(), "sequential, cpu or gpu");
}

}  // namespace hetcache
