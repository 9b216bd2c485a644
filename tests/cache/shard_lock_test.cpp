// The memory store's shard lock (src/cache/memory/shard_lock.hpp): writers exclude readers and each
// other, readers hold it together (more readers than stripes included), and a writer waiting
// behind a stream of overlapping readers gets in.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "cache/memory/shard_lock.hpp"

namespace hetcache::test {
namespace {

using cache::ShardLock;
using Clock = std::chrono::steady_clock;

// Writers set two plain fields one after the other with work between; a reader that ever sees
// them differ, or a writer that finds anyone else inside, shows the exclusion broken. Readers stay
// inside long enough for a writer to arrive meanwhile.
TEST(ShardLock, WritersExcludeReadersAndEachOther) {
  ShardLock lock;
  volatile long first = 0, second = 0;  // read again on every comparison
  std::atomic<int> readers_inside{0}, writers_inside{0};
  std::atomic<long> torn{0}, crowded{0}, reads{0}, writes{0};
  const auto deadline = Clock::now() + std::chrono::milliseconds(400);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (Clock::now() < deadline) {
        std::shared_lock shared(lock);
        readers_inside.fetch_add(1);
        if (writers_inside.load() != 0) crowded.fetch_add(1);
        for (int spin = 0; spin < 200; ++spin) {
          if (first != second) torn.fetch_add(1);
        }
        readers_inside.fetch_sub(1);
        reads.fetch_add(1);
      }
    });
  }
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      for (long i = 1; Clock::now() < deadline; ++i) {
        std::unique_lock exclusive(lock);
        if (writers_inside.fetch_add(1) != 0 || readers_inside.load() != 0) crowded.fetch_add(1);
        first = i;
        for (int spin = 0; spin < 200; ++spin) {
          if (first != i) crowded.fetch_add(1);  // another writer moved it
        }
        second = i;
        writers_inside.fetch_sub(1);
        writes.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(crowded.load(), 0);
  EXPECT_GT(reads.load(), 100);
  EXPECT_GT(writes.load(), 100);
}

// 24 readers (more than the 16 stripes, so some share one) must all be inside at once: each waits
// there until every other has arrived. A lock that let one reader in at a time never gets there.
TEST(ShardLock, ReadersHoldItTogether) {
  ShardLock lock;
  constexpr int kReaders = 24;
  std::atomic<int> inside{0};
  std::atomic<int> met{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kReaders; ++t) {
    threads.emplace_back([&] {
      std::shared_lock shared(lock);
      inside.fetch_add(1);
      const auto give_up = Clock::now() + std::chrono::seconds(20);
      while (inside.load() < kReaders && Clock::now() < give_up) std::this_thread::yield();
      if (inside.load() == kReaders) met.fetch_add(1);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(met.load(), kReaders);
  // And every reader left: a writer gets in.
  std::unique_lock exclusive(lock);
}

// Two readers take turns so that one of them is always inside; a writer must still get in, and
// soon: readers that find a writer waiting step back.
TEST(ShardLock, AWriterIsNotStarvedByOverlappingReaders) {
  ShardLock lock;
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        std::shared_lock shared(lock);
        reads.fetch_add(1);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
  }
  while (reads.load() < 10) std::this_thread::yield();
  std::atomic<bool> got_in{false};
  std::thread writer([&] {
    std::unique_lock exclusive(lock);
    got_in = true;
  });
  const auto give_up = Clock::now() + std::chrono::seconds(5);
  while (!got_in.load() && Clock::now() < give_up) std::this_thread::yield();
  const bool in_time = got_in.load();
  stop = true;  // a starved writer gets in once the readers stop
  for (std::thread& t : readers) t.join();
  writer.join();
  EXPECT_TRUE(in_time) << "the writer waited more than 5 s behind overlapping readers";
}

}  // namespace
}  // namespace hetcache::test
