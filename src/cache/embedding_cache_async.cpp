// The async cache calls, placed like the sync ones, and the Fiber tier of every batch call: fibers
// on the cache's Resources, one per chunk of optimal_batch_size keys.
//
// No fiber blocks its thread here:
//  - memory-tier work (shard locks held for a copy, never across a wait) runs on the caller, so
//    a batch the memory store answers needs no fiber at all;
//  - durable reads go through DurableStore::get_batch_async (RocksDB: the I/O pool; Redis: the
//    store's event loop) and the fiber waits on the future;
//  - a read-through holds no lock while it waits (Stripes::snapshot / cache_if_unwritten);
//  - writes to a durable store hold stripe locks across the store call, so they run whole on the
//    I/O pool.
// No thread_local state is read across a suspension (the only one, the resources' pool marker, is
// the same on every pool thread).
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <cstring>
#include <vector>

#include "cache/cache_impl.hpp"

namespace hetcache {
namespace {

// Runs fn now; its result or its exception is in the returned (ready) future.
template <typename F>
auto ready_future(F&& fn) -> Future<std::invoke_result_t<F&>> {
  Promise<std::invoke_result_t<F&>> promise;
  auto future = promise.get_future();
  promise.fulfil_with(fn);
  return future;
}

}  // namespace

Future<std::vector<std::uint8_t>> EmbeddingCache::Impl::read_durable_on_fibers(
    std::vector<std::string_view> views, MutableMatrixView out, std::vector<std::uint8_t> mask,
    std::vector<std::size_t> absent, std::shared_ptr<cache::PlacedOperation> op) {
  return resources->submit([this, views = std::move(views), out, mask = std::move(mask),
                            absent = std::move(absent), op = std::move(op)]() mutable {
    const cache::FinishOnExit failed(op.get());
    const std::size_t chunk = durable->read_chunk_keys(chunk_keys());
    for_each_chunk(*resources, absent.size(), chunk, [&](std::size_t first, std::size_t count) {
      const auto rows = std::span(absent).subspan(first, count);
      ReadCounts c;
      read_durable(views, rows, out, mask.data(), now_unix_ms(), c, /*on_fiber=*/true);
      this->count(c, rows.size());
    });
    finish_batch(op.get());
    return std::move(mask);
  });
}

Future<std::vector<std::uint8_t>> EmbeddingCache::Impl::get_batch_on_fibers(
    std::vector<std::string_view> views, MutableMatrixView out,
    std::shared_ptr<cache::PlacedOperation> op) {
  std::vector<std::uint8_t> mask(views.size(), 0);
  std::vector<std::size_t> absent = read_memory_first(views, out, mask.data());
  if (absent.empty()) {  // the memory store answered: no fiber hop
    finish_batch(op.get());
    Promise<std::vector<std::uint8_t>> ready;
    ready.set_value(std::move(mask));
    return ready.get_future();
  }
  return read_durable_on_fibers(std::move(views), out, std::move(mask), std::move(absent),
                                std::move(op));
}

Future<void> EmbeddingCache::Impl::put_batch_on_fibers(std::vector<std::string_view> views,
                                                       MatrixView values, std::int64_t expiry_ms,
                                                       std::shared_ptr<cache::PlacedOperation> op) {
  return resources->submit([this, views = std::move(views), values, expiry_ms, op = std::move(op)] {
    const cache::FinishOnExit failed(op.get());
    for_each_chunk(
        *resources, views.size(), chunk_keys(), [&](std::size_t first, std::size_t count) {
          const auto part_keys = std::span(views).subspan(first, count);
          const MatrixView part_values = values.slice(first, count);
          if (durable) {
            resources->submit_io([&] { write(part_keys, part_values, expiry_ms); }).get();
          } else {
            write(part_keys, part_values, expiry_ms);
          }
        });
    finish_batch(op.get());
  });
}

Future<std::size_t> EmbeddingCache::Impl::get_or_compute_on_fibers(
    std::vector<std::string_view> views, MutableMatrixView out, const EmbedFn& embed,
    std::int64_t expiry_ms, std::shared_ptr<cache::PlacedOperation> op) {
  return resources->submit([this, views = std::move(views), out, embed, expiry_ms,
                            op = std::move(op)] {
    const cache::FinishOnExit failed(op.get());
    // Both stores read as get_batch reads them on fibers (counted there): the durable reads are
    // futures this fiber waits on, so a thousand requests waiting on a remote Redis hold no
    // thread. Only keys missing from both go on: embed may block, and writes to a durable store
    // hold stripe locks across the store call, so they run on the I/O pool (single-flight as in
    // the sync call, which reads those keys again without counting them twice).
    const std::vector<std::uint8_t> mask = get_batch_on_fibers(views, out, nullptr).get();
    std::vector<std::string_view> missing;
    std::vector<std::size_t> rows;
    for (std::size_t i = 0; i < views.size(); ++i) {
      if (mask[i]) continue;
      missing.push_back(views[i]);
      rows.push_back(i);
    }
    std::size_t computed = 0;
    if (!missing.empty()) {
      Matrix part(missing.size(), options.dim);
      computed = resources
                     ->submit_io([&] {
                       return get_or_compute(missing, part.mutable_view(), embed, expiry_ms,
                                             /*count_reads=*/false);
                     })
                     .get();
      for (std::size_t j = 0; j < rows.size(); ++j)
        std::memcpy(out.row(rows[j]), part.row(j), options.dim * sizeof(float));
    }
    if (op) op->finish({});
    return computed;
  });
}

Future<std::vector<std::uint8_t>> EmbeddingCache::get_batch_async(std::span<const std::string> keys,
                                                                  MutableMatrixView out) {
  Impl* const im = impl_.get();
  im->counters.local().get_batch_async_calls.fetch_add(1, std::memory_order_relaxed);
  im->follow();
  std::vector<std::string_view> views(keys.begin(), keys.end());
  im->validate_get(views, out);
  auto op = std::make_shared<cache::PlacedOperation>(
      im->scheduler, im->work(OpKind::Get, OpKind::GetBatch, keys.size()), std::nullopt);
  switch (op->tier()) {
    case Tier::Fiber:
      return im->get_batch_on_fibers(std::move(views), out, std::move(op));
    case Tier::Cpu:
      return im->resources->submit_cpu([im, views = std::move(views), out, op] {
        const cache::FinishOnExit failed(op.get());
        return im->get_batch_on(*op, views, out);
      });
    default:
      return ready_future([&] { return im->get_batch_on(*op, views, out); });
  }
}

Future<void> EmbeddingCache::put_batch_async(std::span<const std::string> keys, MatrixView values,
                                             Ttl ttl) {
  Impl* const im = impl_.get();
  im->counters.local().put_batch_async_calls.fetch_add(1, std::memory_order_relaxed);
  std::vector<std::string_view> views(keys.begin(), keys.end());
  im->validate_put(views, values);
  const std::int64_t expiry_ms = expiry_for(ttl, now_unix_ms());
  auto op = std::make_shared<cache::PlacedOperation>(
      im->scheduler, im->work(OpKind::Put, OpKind::PutBatch, keys.size()), std::nullopt);
  switch (op->tier()) {
    case Tier::Fiber:
      return im->put_batch_on_fibers(std::move(views), values, expiry_ms, std::move(op));
    case Tier::Cpu:
      return im->resources->submit_cpu([im, views = std::move(views), values, expiry_ms, op] {
        const cache::FinishOnExit failed(op.get());
        im->put_batch_on(*op, views, values, expiry_ms);
      });
    default:
      return ready_future([&] { im->put_batch_on(*op, views, values, expiry_ms); });
  }
}

Future<std::size_t> EmbeddingCache::get_or_compute_async(std::span<const std::string> keys,
                                                         MutableMatrixView out,
                                                         const EmbedFn& embed, Ttl ttl) {
  Impl* const im = impl_.get();
  im->counters.local().get_or_compute_async_calls.fetch_add(1, std::memory_order_relaxed);
  im->follow();
  std::vector<std::string_view> views(keys.begin(), keys.end());
  const std::int64_t expiry_ms = im->validate_get_or_compute(views, out, embed, ttl);
  auto op = std::make_shared<cache::PlacedOperation>(
      im->scheduler, im->work(OpKind::Get, OpKind::GetBatch, keys.size()), std::nullopt);
  switch (op->tier()) {
    case Tier::Fiber:
      return im->get_or_compute_on_fibers(std::move(views), out, embed, expiry_ms, std::move(op));
    case Tier::Cpu:
      return im->resources->submit_cpu([im, views = std::move(views), out, embed, expiry_ms, op] {
        const cache::FinishOnExit failed(op.get());
        return im->get_or_compute_on(*op, views, out, embed, expiry_ms);
      });
    default:
      return ready_future([&] { return im->get_or_compute_on(*op, views, out, embed, expiry_ms); });
  }
}

}  // namespace hetcache
