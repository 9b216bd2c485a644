// The async cache API: the same results as the sync calls, read-through and writes through the
// durable tier from fibers, get_or_compute_async's single computation, errors through futures, and
// the no-blocking proof: 64 callers x 10k keys on a pool of ONE fiber thread.
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "cache/cache_test_util.hpp"

namespace hetcache {
namespace {

using test::make_keys;
using test::matrix_for;
using test::row_equals;
using test::TempDir;
using test::vector_for;

constexpr std::size_t kDim = 48;

CacheOptions options_for(std::size_t dim, std::shared_ptr<Resources> runtime,
                         std::size_t chunk = 64) {
  CacheOptions options;
  options.dim = dim;
  options.resources = std::move(runtime);
  options.scheduler.optimal_batch_size = chunk;
  return options;
}

std::shared_ptr<Resources> small_runtime(std::size_t fiber_threads = 2) {
  return std::make_shared<Resources>(
      ResourcesOptions{.fiber_threads = fiber_threads, .io_threads = 2, .cpu_threads = 2});
}

TEST(AsyncCache, GetBatchAsyncMatchesTheSyncCall) {
  CacheOptions options = options_for(kDim, small_runtime(), 16);
  EmbeddingCache cache(options);
  const auto stored = make_keys("k", 500);
  cache.put_batch(stored, matrix_for(stored, 1, kDim));
  auto asked = make_keys("k", 300, 400);  // 100 hits, then 200 misses
  Matrix async_out(asked.size(), kDim), sync_out(asked.size(), kDim);
  const auto async_mask = cache.get_batch_async(asked, async_out.mutable_view()).get();
  const auto sync_mask = cache.get_batch(asked, sync_out.mutable_view());
  EXPECT_EQ(async_mask, sync_mask);
  for (std::size_t i = 0; i < asked.size(); ++i) {
    EXPECT_EQ(async_mask[i], i < 100 ? 1 : 0);
    if (async_mask[i]) {
      EXPECT_TRUE(row_equals(async_out.row(i), vector_for(asked[i], 1, kDim)));
    }
  }
  const CacheStats s = cache.stats();
  EXPECT_EQ(s.get_batch_async_calls, 1u);
  EXPECT_EQ(s.hits, 200u);
  EXPECT_EQ(s.misses, 400u);
}

TEST(AsyncCache, ReadsThroughAndWritesTheDurableTier) {
  TempDir dir;
  auto runtime = small_runtime();
  const auto keys = make_keys("doc", 3000);
  {
    // A memory tier far smaller than the data: most async reads come from RocksDB.
    CacheOptions options = options_for(kDim, runtime);
    options.max_bytes = 64 << 10;
    options.durable = RocksDbOptions{.path = dir.path()};
    EmbeddingCache cache(options);
    const Matrix values = matrix_for(keys, 7, kDim);
    cache.put_batch_async(keys, values).get();
    Matrix out(keys.size(), kDim);
    const auto mask = cache.get_batch_async(keys, out.mutable_view()).get();
    for (std::size_t i = 0; i < keys.size(); ++i) {
      ASSERT_EQ(mask[i], 1) << keys[i];
      ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], 7, kDim))) << keys[i];
    }
    EXPECT_GT(cache.stats().durable_hits, 2000u);
    EXPECT_GT(runtime->stats().io_calls, 0u);
  }
  // Written for real: a new cache over the same directory reads them.
  CacheOptions reopened = options_for(kDim, runtime);
  reopened.durable = RocksDbOptions{.path = dir.path()};
  EmbeddingCache cache(reopened);
  Matrix out(1, kDim);
  ASSERT_TRUE(cache.get(keys[1234], std::span<float>(out.row(0), kDim)));
  EXPECT_TRUE(row_equals(out.row(0), vector_for(keys[1234], 7, kDim)));
}

TEST(AsyncCache, GetOrComputeAsyncComputesEachMissingKeyOnce) {
  CacheOptions options = options_for(kDim, small_runtime(), 8);
  EmbeddingCache cache(options);
  const auto keys = make_keys("q", 200);
  cache.put_batch(std::span(keys).first(50), matrix_for(make_keys("q", 50), 3, kDim));
  std::mutex mutex;
  std::multiset<std::string> computed;
  const EmbedFn embed = [&](std::span<const std::string> missing) {
    {
      std::lock_guard lock(mutex);
      computed.insert(missing.begin(), missing.end());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return matrix_for(std::vector<std::string>(missing.begin(), missing.end()), 3, kDim);
  };
  std::vector<Matrix> outs;
  for (int c = 0; c < 8; ++c) outs.emplace_back(keys.size(), kDim);
  std::vector<Future<std::size_t>> futures;
  for (auto& out : outs)
    futures.push_back(cache.get_or_compute_async(keys, out.mutable_view(), embed));
  std::size_t total = 0;
  for (auto& f : futures) total += f.get();
  EXPECT_EQ(total, 150u);  // every missing key computed by exactly one caller
  EXPECT_EQ(computed.size(), 150u);
  for (const auto& key : computed) EXPECT_EQ(computed.count(key), 1u) << key;
  for (const auto& out : outs) {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], 3, kDim))) << keys[i];
    }
  }
  // All cached now: the fast path answers on the fiber, without embed.
  Matrix again(keys.size(), kDim);
  EXPECT_EQ(cache.get_or_compute_async(keys, again.mutable_view(), embed).get(), 0u);
  EXPECT_EQ(computed.size(), 150u);
}

TEST(AsyncCache, ErrorsAreThrownAtOnceOrThroughTheFuture) {
  CacheOptions options = options_for(kDim, small_runtime());
  EmbeddingCache cache(options);
  const auto keys = make_keys("e", 10);
  Matrix wrong_dim(keys.size(), kDim + 1);
  EXPECT_THROW(cache.get_batch_async(keys, wrong_dim.mutable_view()), Error);
  EXPECT_THROW(cache.put_batch_async(keys, wrong_dim.view()), Error);
  std::vector<std::string> with_empty = {"a", ""};
  Matrix two(2, kDim);
  EXPECT_THROW(cache.get_batch_async(with_empty, two.mutable_view()), Error);
  Matrix out(keys.size(), kDim);
  EXPECT_THROW(cache.put_batch_async(keys, out.view(), std::chrono::milliseconds(0)), Error);
  auto failing = cache.get_or_compute_async(keys, out.mutable_view(), [](auto) -> Matrix {
    throw std::runtime_error("model server down");
  });
  EXPECT_THROW(failing.get(), std::runtime_error);
  EXPECT_EQ(cache.stats().entries, 0u);  // nothing stored by the failed calls
  CacheOptions zero_chunk = options_for(kDim, nullptr, 0);
  EXPECT_THROW(EmbeddingCache{zero_chunk}, Error);
}

// The proof that no fiber blocks its thread: one fiber thread, 64 callers that are themselves
// fibers on that thread, each reading 10k keys (most from RocksDB, through the I/O pool). If any
// wait blocked the thread instead of suspending the fiber, nothing else could run on it and the
// batch would never finish.
TEST(AsyncCache, SixtyFourCallersOnOneFiberThreadNeverDeadlock) {
  TempDir dir;
  auto runtime = std::make_shared<Resources>(ResourcesOptions{.fiber_threads = 1, .io_threads = 2});
  constexpr std::size_t kDimSmall = 16, kKeys = 10000, kCallers = 64;
  CacheOptions options = options_for(kDimSmall, runtime);
  options.max_bytes = 256 << 10;  // ~2k of the 10k keys fit in memory
  options.durable = RocksDbOptions{.path = dir.path()};
#if defined(__SANITIZE_THREAD__)
  // TSan tracks every live fiber like a thread and stops at 8128; 64 callers x 125 chunks of 64
  // would be ~8000 at once. Bigger chunks test the same thing: no fiber blocks the one thread.
  options.scheduler.optimal_batch_size = 256;
#endif
  EmbeddingCache cache(options);
  const auto keys = make_keys("z", kKeys);
  cache.put_batch(keys, matrix_for(keys, 9, kDimSmall));
  std::vector<Matrix> outs;
  for (std::size_t c = 0; c < kCallers; ++c) outs.emplace_back(kKeys, kDimSmall);
  test::read_from_fiber_callers(*runtime, cache, keys, outs, std::chrono::seconds(240));
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  for (std::size_t c = 0; c < kCallers; c += 7) {
    for (std::size_t i = 0; i < kKeys; i += 97) {
      ASSERT_TRUE(row_equals(outs[c].row(i), vector_for(keys[i], 9, kDimSmall)));
    }
  }
  EXPECT_EQ(runtime->stats().fiber_threads, 1u);
}

TEST(AsyncCache, AsyncCallsFromPlainThreadsAndFibersMixWithSyncWriters) {
  CacheOptions options = options_for(kDim, small_runtime(), 32);
  EmbeddingCache cache(options);
  const auto keys = make_keys("m", 400);
  cache.put_batch(keys, matrix_for(keys, 0, kDim));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (std::uint64_t version = 1; !stop; ++version) {
      cache.put_batch(keys, matrix_for(keys, version % 3, kDim));
    }
  });
  for (int round = 0; round < 50; ++round) {
    Matrix out(keys.size(), kDim);
    const auto mask = cache.get_batch_async(keys, out.mutable_view()).get();
    for (std::size_t i = 0; i < keys.size(); ++i) {
      ASSERT_EQ(mask[i], 1);
      // Every row is one whole version written for its key, never a mix.
      const bool whole = row_equals(out.row(i), vector_for(keys[i], 0, kDim)) ||
                         row_equals(out.row(i), vector_for(keys[i], 1, kDim)) ||
                         row_equals(out.row(i), vector_for(keys[i], 2, kDim));
      ASSERT_TRUE(whole) << keys[i];
    }
  }
  stop = true;
  writer.join();
}

}  // namespace
}  // namespace hetcache
