// The GPU tier's ranking keys and selects, run on the host: the same headers the kernels compile
// (src/compute/cuda/rank_keys.hpp, queue_select.hpp), with a one-thread "block" and with a block of
// host threads meeting at a real barrier (atomics where the kernels use atomicAdd). This checks the
// logic everywhere -- key order is the result order of every tier, keys decode to their scores,
// each select keeps exactly the k smallest with padding where a row is short, and tiles split into
// chunks + merge give the top-k of the whole row -- while the GPU tests check it on a device.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "compute/cuda/queue_select.hpp"
#include "compute/cuda/rank_keys.hpp"
#include "reference.hpp"

namespace hetcache::gpu {
namespace {

struct SerialBlock {
  unsigned thread() const { return 0; }
  unsigned threads() const { return 1; }
  void sync() const {}
  template <typename T>
  T atomic_add(T& target, T value) const {
    const T before = target;
    target += value;
    return before;
  }
};

// A block of `threads` host threads: sync() is a barrier, atomic_add an atomic read-modify-write.
struct ThreadedBlock {
  unsigned id;
  unsigned count;
  std::barrier<>* barrier;
  unsigned thread() const { return id; }
  unsigned threads() const { return count; }
  void sync() const { barrier->arrive_and_wait(); }
  template <typename T>
  T atomic_add(T& target, T value) const {
    return std::atomic_ref<T>(target).fetch_add(value);
  }
};

// Runs body(block) on every thread of one block, as a kernel launch of one block would.
template <typename Body>
void run_block(unsigned threads, const Body& body) {
  if (threads == 1) {
    SerialBlock block;
    body(block);
    return;
  }
  std::barrier<> barrier(threads);
  std::vector<std::jthread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ThreadedBlock block{t, threads, &barrier};
      body(block);
    });
  }
}

enum class Select { Radix, Queue, Best };

// One block selecting the keep smallest of key_of(0 .. n) into out[0 .. pad_to).
template <typename KeyOf>
void select_into(Select which, unsigned threads, const KeyOf& key_of, std::size_t n,
                 std::size_t keep, std::size_t pad_to, std::uint64_t* out) {
  auto shared = std::make_unique<BestKeysShared>();
  run_block(threads, [&](auto& block) {
    switch (which) {
      case Select::Radix:
        select_smallest(block, shared->radix, key_of, n, keep, pad_to, out);
        break;
      case Select::Queue:
        queue_select_smallest(block, shared->queue, key_of, n, keep, pad_to, out);
        break;
      case Select::Best:
        select_best(block, *shared, key_of, n, keep, pad_to, out);
        break;
    }
  });
}

std::vector<std::uint64_t> select(const std::vector<std::uint64_t>& keys, std::size_t keep,
                                  std::size_t pad_to, Select which = Select::Radix,
                                  unsigned threads = 1) {
  std::vector<std::uint64_t> out(pad_to, 12345);
  select_into(
      which, threads, [&](std::size_t i) { return keys[i]; }, keys.size(), keep, pad_to,
      out.data());
  return out;
}

std::vector<float> awkward_scores(std::mt19937_64& rng, std::size_t n) {
  const float specials[] = {0.0f,
                            -0.0f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(),
                            1.0f,
                            -1.0f,
                            std::numeric_limits<float>::denorm_min()};
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  std::vector<float> s(n);
  for (auto& v : s) {
    const auto pick = rng() % 10;
    v = pick < 8 ? specials[pick] : uniform(rng);
  }
  return s;
}

TEST(RankKeys, KeyOrderIsTheResultOrderAndKeysDecodeToTheirScores) {
  std::mt19937_64 rng(test::test_seed());
  for (const Metric metric : {Metric::Dot, Metric::Cosine, Metric::L2}) {
    const auto scores = awkward_scores(rng, 2000);
    std::vector<std::uint64_t> keys;
    for (std::uint32_t i = 0; i < scores.size(); ++i) {
      keys.push_back(make_key(scores[i], metric, i));
      const float back = score_of_key(keys.back(), metric);
      if (std::isnan(scores[i])) {
        ASSERT_TRUE(std::isnan(back));
      } else {
        ASSERT_EQ(back, scores[i]) << "score " << scores[i];
        ASSERT_FALSE(std::signbit(back) && back == 0.0f) << "-0 decodes as +0";
      }
    }
    std::sort(keys.begin(), keys.end());
    for (std::size_t j = 1; j < keys.size(); ++j) {
      const auto a_id = keys[j - 1] & 0xFFFFFFFFu, b_id = keys[j] & 0xFFFFFFFFu;
      const float a = scores[a_id], b = scores[b_id];
      if (std::isnan(a)) {
        ASSERT_TRUE(std::isnan(b)) << "a real score after NaN";
        ASSERT_LT(a_id, b_id);
      } else if (!std::isnan(b)) {
        if (a == b) {
          ASSERT_LT(a_id, b_id) << "tie not broken by lower id";
        } else {
          ASSERT_TRUE(larger_is_better(metric) ? a > b : a < b) << a << " before " << b;
        }
      }
    }
  }
}

TEST(RankKeys, ScoresFromDotsFollowTheCpuRules) {
  EXPECT_EQ(score_from_dot(3.0f, 4.0f, 9.0f, Metric::Cosine), 0.5f);
  EXPECT_EQ(score_from_dot(3.0f, 0.0f, 9.0f, Metric::Cosine), 0.0f) << "zero vector scores 0";
  EXPECT_TRUE(std::isnan(score_from_dot(std::nanf(""), 1.0f, 1.0f, Metric::Cosine)));
  EXPECT_EQ(score_from_dot(1.0f, 1.0f, 1.0f, Metric::L2), 0.0f);
  EXPECT_EQ(score_from_dot(1.0000001f, 1.0f, 1.0f, Metric::L2), 0.0f) << "never below 0";
  EXPECT_EQ(score_from_dot(0.5f, 1.0f, 2.0f, Metric::L2), 2.0f);
  EXPECT_EQ(score_from_dot(-2.5f, 7.0f, 7.0f, Metric::Dot), -2.5f);
}

TEST(RankKeys, SelectsKeepExactlyTheSmallestAndPadShortRows) {
  std::mt19937_64 rng(test::test_seed());
  struct Case {
    Select which;
    unsigned threads;
    std::size_t max_keep;
    int rounds;
  };
  // The queue select also on 3 threads (a round that does not divide the row) and 32 (a warp).
  const Case cases[] = {{Select::Radix, 1, 3050, 300},
                        {Select::Radix, 8, 3050, 40},
                        {Select::Queue, 1, kQueueSelectMaxK, 300},
                        {Select::Queue, 3, kQueueSelectMaxK, 60},
                        {Select::Queue, 32, kQueueSelectMaxK, 40}};
  for (const Case& c : cases) {
    for (int round = 0; round < c.rounds; ++round) {
      const std::size_t n = rng() % 3000 + 1, keep = rng() % c.max_keep + 1;
      const std::size_t padding = rng() % 3 == 0 ? rng() % 100 : 0;
      std::vector<std::uint64_t> keys;
      const auto scores = awkward_scores(rng, n);
      for (std::uint32_t i = 0; i < n; ++i) keys.push_back(make_key(scores[i], Metric::Dot, i));
      keys.insert(keys.end(), padding, kNoKey);
      std::shuffle(keys.begin(), keys.end(), rng);
      const std::size_t pad_to = keep + rng() % 3;
      auto got = select(keys, keep, pad_to, c.which, c.threads);
      std::vector<std::uint64_t> want = keys;
      std::sort(want.begin(), want.end());
      want.resize(std::min(keep, want.size()));
      want.resize(pad_to, kNoKey);
      if (c.which == Select::Radix) std::sort(got.begin(), got.end());  // the queue's is sorted
      ASSERT_EQ(got, want) << "select " << static_cast<int>(c.which) << " threads " << c.threads
                           << " n " << n << " keep " << keep << " padding " << padding;
    }
  }
}

TEST(RankKeys, QueueSelectIsExactWhenEveryKeyBeatsTheThresholdAndWhenNoneDoes) {
  // Worst case for the queue: scores that keep improving, so every key is queued and the block
  // merges as often as it can; best case: none is queued after the first merge.
  for (const bool improving : {true, false}) {
    const std::size_t n = 20000, keep = 256;
    std::vector<std::uint64_t> keys(n);
    for (std::uint32_t i = 0; i < n; ++i)
      keys[i] = make_key(static_cast<float>(improving ? i : n - i), Metric::Dot, i);
    const auto got = select(keys, keep, keep, Select::Queue, 8);
    std::vector<std::uint64_t> want = keys;
    std::sort(want.begin(), want.end());
    want.resize(keep);
    ASSERT_EQ(got, want) << (improving ? "improving" : "worsening");
  }
}

TEST(RankKeys, TileChunksThenMergeGiveTheTopKOfTheWholeRow) {
  // run()'s algorithm for one query: per tile and chunk keep min(k, chunk) keys (padded), select
  // the k smallest over all of them, sort when k > kQueueSelectMaxK. Compared with sorting every
  // key.
  std::mt19937_64 rng(test::test_seed());
  for (int round = 0; round < 100; ++round) {
    // As in run(), a tile is never longer than the row.
    const std::size_t n = rng() % 5000 + 1, tile = std::min<std::size_t>(rng() % 700 + 1, n),
                      k = round % 2 ? rng() % 1200 + 1 : rng() % kQueueSelectMaxK + 1;
    const std::size_t chunks = rng() % 4 + 1, chunk_rows = (tile + chunks - 1) / chunks;
    const Metric metric = round % 3 == 0 ? Metric::L2 : Metric::Cosine;
    const unsigned threads = round % 4 == 0 ? 4 : 1;
    const auto scores = awkward_scores(rng, n);
    const std::size_t tiles = (n + tile - 1) / tile, kept = std::min(k, n),
                      keep = std::min(kept, chunk_rows), tile_ld = chunks * keep;
    std::vector<std::uint64_t> partial(tiles * tile_ld);
    for (std::size_t t = 0; t < tiles; ++t) {
      const std::size_t rows = std::min(tile, n - t * tile);
      for (std::size_t c = 0; c < chunks; ++c) {
        const std::size_t first = t * tile + c * chunk_rows;
        const std::size_t count =
            c * chunk_rows < rows ? std::min(chunk_rows, rows - c * chunk_rows) : 0;
        select_into(
            Select::Best, threads,
            [&](std::size_t i) {
              return make_key(scores[first + i], metric, static_cast<std::uint32_t>(first + i));
            },
            count, keep, keep, partial.data() + t * tile_ld + c * keep);
      }
    }
    std::vector<std::uint64_t> result = tiles * chunks > 1
                                            ? select(partial, kept, kept, Select::Best, threads)
                                            : std::vector<std::uint64_t>(partial);
    if (kept > kQueueSelectMaxK) std::sort(result.begin(), result.end());
    std::vector<std::uint64_t> all;
    for (std::uint32_t i = 0; i < n; ++i) all.push_back(make_key(scores[i], metric, i));
    std::sort(all.begin(), all.end());
    all.resize(kept);
    ASSERT_EQ(result, all) << "n " << n << " tile " << tile << " chunks " << chunks << " k " << k;
  }
}

}  // namespace
}  // namespace hetcache::gpu
