// The Fiber tier's synchronous read of a store whose reads block (RocksDB): chunks claimed by the
// calling thread and the I/O pool -- every chunk once, the caller never waiting on a helper that
// has not started, a failing chunk rethrown after the others ran -- and the cache's read running
// there (no fiber hop) with the same values as every other tier; and how many I/O threads it asks
// for (the cores, more only while reads wait off the CPU: read_waits.hpp).
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cache/cache_test_util.hpp"
#include "cache/io_chunks.hpp"

namespace hetcache {
namespace {

using cache::claimed_chunks_on_io;
using test::make_keys;
using test::matrix_for;
using test::row_equals;
using test::TempDir;
using test::vector_for;

std::shared_ptr<Resources> io_runtime(std::size_t io_threads) {
  return std::make_shared<Resources>(
      ResourcesOptions{.fiber_threads = 2, .io_threads = io_threads, .cpu_threads = 2});
}

TEST(ClaimedChunksOnIo, EveryChunkRunsOnceAndTheCallerRunsSome) {
  const auto runtime = io_runtime(3);
  constexpr std::size_t kN = 1000, kChunk = 7, kChunks = (kN + kChunk - 1) / kChunk;
  std::vector<std::atomic<int>> runs(kChunks);
  std::vector<std::atomic<std::size_t>> counts(kChunks);
  std::atomic<std::size_t> on_caller{0};
  const auto caller = std::this_thread::get_id();
  claimed_chunks_on_io(*runtime, kN, kChunk, 3, [&](std::size_t first, std::size_t count) {
    ASSERT_EQ(first % kChunk, 0u);
    runs[first / kChunk].fetch_add(1);
    counts[first / kChunk].store(count);
    if (std::this_thread::get_id() == caller) on_caller.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  });
  for (std::size_t c = 0; c < kChunks; ++c) {
    EXPECT_EQ(runs[c].load(), 1) << "chunk " << c;
    EXPECT_EQ(counts[c].load(), c + 1 < kChunks ? kChunk : kN - c * kChunk) << "chunk " << c;
  }
  EXPECT_GT(on_caller.load(), 0u) << "the calling thread works too";
  EXPECT_LT(on_caller.load(), kChunks) << "the I/O pool's threads helped";
}

TEST(ClaimedChunksOnIo, TheCallerFinishesAloneWhileTheIoPoolIsBusy) {
  // The only I/O thread is held until the call returns: the helper it was sent cannot start, and
  // the caller, which runs every chunk itself, must not wait for it.
  const auto runtime = io_runtime(1);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  Future<void> blocker = runtime->submit_io([released] { released.wait(); });
  std::atomic<std::size_t> ran{0};
  auto call = std::async(std::launch::async, [&] {
    claimed_chunks_on_io(*runtime, 64, 8, 1, [&](std::size_t, std::size_t) { ran.fetch_add(1); });
  });
  const bool returned = call.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  release.set_value();
  blocker.get();
  call.get();
  EXPECT_TRUE(returned) << "the call waited for a helper that never started";
  EXPECT_EQ(ran.load(), 8u);
}

TEST(ClaimedChunksOnIo, AFailingChunkIsRethrownAfterEveryOtherChunkRan) {
  const auto runtime = io_runtime(2);
  std::vector<std::atomic<int>> runs(50);
  try {
    claimed_chunks_on_io(*runtime, 500, 10, 2, [&](std::size_t first, std::size_t) {
      runs[first / 10].fetch_add(1);
      if (first == 30) throw Error(ErrorCode::StoreUnavailable, "chunk at 30 failed");
    });
    FAIL() << "the failure was not rethrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::StoreUnavailable);
    EXPECT_NE(std::string(e.what()).find("chunk at 30"), std::string::npos) << e.what();
  }
  for (std::size_t c = 0; c < runs.size(); ++c) EXPECT_EQ(runs[c].load(), 1) << "chunk " << c;
}

// Runs `calls` reads of 8 chunks with `chunk_body` through claimed_chunks_on_io, teaching `waits`.
template <typename Body>
void read_chunks(Resources& runtime, cache::ReadWaits& waits, int calls, const Body& chunk_body) {
  for (int i = 0; i < calls; ++i) {
    claimed_chunks_on_io(
        runtime, 64, 8, waits.helpers(2, 3), [&](std::size_t, std::size_t) { chunk_body(); },
        &waits);
  }
}

TEST(ReadWaits, ChunksThatWaitOffTheCpuAskForTheWholeIoPool) {
  const auto runtime = io_runtime(3);
  cache::ReadWaits waits;
  EXPECT_EQ(waits.helpers(2, 3), 1u) << "before any read: the cores, no more";
  read_chunks(*runtime, waits, 12,
              [] { std::this_thread::sleep_for(std::chrono::microseconds(300)); });
  EXPECT_GT(waits.share(), 0.5);
  EXPECT_EQ(waits.helpers(2, 3), 3u) << "share " << waits.share();
}

TEST(ReadWaits, ChunksThatComputeKeepToTheCores) {
  const auto runtime = io_runtime(3);
  cache::ReadWaits waits;
  read_chunks(*runtime, waits, 4,
              [] { std::this_thread::sleep_for(std::chrono::microseconds(300)); });
  ASSERT_GT(waits.share(), 0.3) << "the sleeps taught waiting";
  // Busy chunks on cores that other threads keep busy too: the time they take the chunks' threads
  // off the CPU is preemption, not waiting -- more threads would only share the cores further --
  // so the share falls back.
  std::atomic<bool> stop{false};
  std::vector<std::thread> others;
  for (unsigned i = 0; i < std::max(2u, std::thread::hardware_concurrency()); ++i) {
    others.emplace_back([&stop] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  }
  read_chunks(*runtime, waits, 24, [] {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(300);
    while (std::chrono::steady_clock::now() < until) {
    }
  });
  stop = true;
  for (auto& t : others) t.join();
  EXPECT_LT(waits.share(), 0.25);
  EXPECT_EQ(waits.helpers(2, 3), 1u) << "share " << waits.share();
  EXPECT_EQ(waits.helpers(1, 3), 0u) << "one core: the caller alone";
  EXPECT_EQ(waits.helpers(8, 3), 3u) << "never more than the I/O pool";
}

// A RocksDB cache whose memory store holds 32 entries: a batch of 600 keys reads nearly all of
// them from the durable store, in 10 chunks of 64.
struct DurableReads {
  TempDir dir;
  std::shared_ptr<Resources> runtime = io_runtime(3);
  std::vector<std::string> keys = make_keys("doc", 600);
  std::unique_ptr<EmbeddingCache> cache;
  static constexpr std::size_t kDim = 32;

  DurableReads() {
    CacheOptions options;
    options.dim = kDim;
    options.max_entries = 32;
    options.resources = runtime;
    options.durable = RocksDbOptions{.path = dir.path()};
    cache = std::make_unique<EmbeddingCache>(options);
    cache->put_batch(keys, matrix_for(keys, 7, kDim).view());
  }
  void expect_read(Tier tier) {
    Matrix out(keys.size(), kDim);
    const auto found = cache->get_batch(keys, out.mutable_view(), tier);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      ASSERT_TRUE(found[i]) << keys[i];
      ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], 7, kDim))) << keys[i];
    }
  }
};

TEST(FiberTierRead, ASyncReadOfRocksDbRunsOnTheCallerAndTheIoPoolWithNoFiberHop) {
  DurableReads reads;
  const ResourcesStats before = reads.runtime->stats();
  const CacheStats stats_before = reads.cache->stats();
  reads.expect_read(Tier::Fiber);
  const ResourcesStats after = reads.runtime->stats();
  EXPECT_EQ(after.fibers_started, before.fibers_started) << "no fiber hop for a blocking store";
  // Two cores, three I/O threads, reads not yet seen waiting: one helper beside the caller keeps
  // both cores busy; more would only crowd them.
  EXPECT_EQ(after.io_calls, before.io_calls + 1) << "as many threads as cores";
  EXPECT_GE(reads.cache->stats().durable_hits - stats_before.durable_hits, 600u - 32u);
  for (const Tier tier : {Tier::Sequential, Tier::Cpu, Tier::Fiber}) {
    SCOPED_TRACE(std::string(to_string(tier)));
    reads.expect_read(tier);
  }
}

TEST(FiberTierRead, ASyncReadFromAFiberStillRunsItsChunksAsFibers) {
  // A fiber's thread must not block on the store: the call goes through fibers and the I/O pool.
  DurableReads reads;
  const ResourcesStats before = reads.runtime->stats();
  reads.runtime->submit([&] { reads.expect_read(Tier::Fiber); }).get();
  EXPECT_GT(reads.runtime->stats().fibers_started, before.fibers_started + 1);
}

}  // namespace
}  // namespace hetcache
