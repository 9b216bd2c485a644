// The GPU tier's ranking keys and radix select, run on the host: the same header the kernels
// compile (src/cuda/rank_keys.hpp), with a one-thread "block". This checks the logic everywhere --
// key order is the result order of every tier, keys decode to their scores, the select keeps
// exactly the k smallest with padding where a row is short, and tiles + merge give the top-k of
// the whole row -- while the parallel execution is checked by the GPU tests on a device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "cuda/rank_keys.hpp"
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

std::vector<std::uint64_t> select(const std::vector<std::uint64_t>& keys, std::size_t keep,
                                  std::size_t pad_to) {
  std::vector<std::uint64_t> out(pad_to, 12345);
  SerialBlock block;
  SelectShared shared{};
  select_smallest(
      block, shared, [&](std::size_t i) { return keys[i]; }, keys.size(), keep, pad_to, out.data());
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

TEST(RankKeys, SelectKeepsExactlyTheSmallestAndPadsShortRows) {
  std::mt19937_64 rng(test::test_seed());
  for (int round = 0; round < 300; ++round) {
    const std::size_t n = rng() % 3000 + 1, keep = rng() % (n + 50) + 1;
    const std::size_t padding = rng() % 3 == 0 ? rng() % 100 : 0;
    std::vector<std::uint64_t> keys;
    const auto scores = awkward_scores(rng, n);
    for (std::uint32_t i = 0; i < n; ++i) keys.push_back(make_key(scores[i], Metric::Dot, i));
    keys.insert(keys.end(), padding, kNoKey);
    std::shuffle(keys.begin(), keys.end(), rng);
    const std::size_t pad_to = std::max(keep, std::size_t{1});
    auto got = select(keys, keep, pad_to);
    std::vector<std::uint64_t> want = keys;
    std::sort(want.begin(), want.end());
    want.resize(std::min(keep, want.size()));
    want.resize(pad_to, kNoKey);
    std::sort(got.begin(), got.end());
    ASSERT_EQ(got, want) << "n " << n << " keep " << keep << " padding " << padding;
  }
}

TEST(RankKeys, TilesThenMergeGiveTheTopKOfTheWholeRow) {
  // run()'s algorithm for one query: per tile keep min(k, tile) keys (padded), select the k
  // smallest over all tiles' keys, sort. Compared with sorting every key.
  std::mt19937_64 rng(test::test_seed());
  for (int round = 0; round < 100; ++round) {
    // As in run(), a tile is never longer than the row.
    const std::size_t n = rng() % 5000 + 1, tile = std::min<std::size_t>(rng() % 700 + 1, n),
                      k = rng() % 1200 + 1;
    const Metric metric = round % 2 ? Metric::L2 : Metric::Cosine;
    const auto scores = awkward_scores(rng, n);
    const std::size_t tiles = (n + tile - 1) / tile, keep = std::min(k, tile),
                      kept = std::min(k, n);
    std::vector<std::uint64_t> partial(tiles * keep);
    for (std::size_t t = 0; t < tiles; ++t) {
      const std::size_t first = t * tile, rows = std::min(tile, n - first);
      SerialBlock block;
      SelectShared shared{};
      select_smallest(
          block, shared,
          [&](std::size_t i) {
            return make_key(scores[first + i], metric, static_cast<std::uint32_t>(first + i));
          },
          rows, keep, keep, partial.data() + t * keep);
    }
    std::vector<std::uint64_t> result =
        tiles > 1 ? select(partial, kept, kept) : std::vector<std::uint64_t>(partial);
    std::sort(result.begin(), result.end());
    std::vector<std::uint64_t> all;
    for (std::uint32_t i = 0; i < n; ++i) all.push_back(make_key(scores[i], metric, i));
    std::sort(all.begin(), all.end());
    all.resize(kept);
    ASSERT_EQ(result, all) << "n " << n << " tile " << tile << " k " << k;
  }
}

}  // namespace
}  // namespace hetcache::gpu
