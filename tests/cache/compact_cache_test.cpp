// A cache whose memory store keeps compact rows (CacheOptions::memory_storage): more entries in the
// same bytes, reads that return the stored rows, exact search that returns what the f32 cache
// returns (keys and score bits, with removed, overwritten and expired rows about), fast search's
// recall, and the options it refuses.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cache/cache_test_util.hpp"

namespace hetcache::test {
namespace {

using namespace std::chrono_literals;

constexpr StorageType kCompactTypes[] = {StorageType::F16, StorageType::Bf16, StorageType::I8};

CacheOptions options_for(std::size_t dim, StorageType storage, ScoreMode mode) {
  CacheOptions options;
  options.dim = dim;
  options.max_bytes = std::size_t{64} << 20;
  options.memory_storage = storage;
  options.search_mode = mode;
  return options;
}

std::string key_of(std::size_t i) { return "k" + std::to_string(i); }

// Clusters of near-duplicates (the worst case for exact mode: many rows within the bounds of the
// k-th best) among plain Gaussian rows; never zero, no two rows equal.
Matrix clustered_rows(std::size_t n, std::size_t dim, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix rows(n, dim);
  std::vector<float> centre(dim);
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 40 == 0)
      for (float& c : centre) c = normal(gen);
    const bool near_duplicate = i % 3 != 0;
    for (std::size_t j = 0; j < dim; ++j) {
      rows.row(i)[j] = near_duplicate ? centre[j] + 1e-3f * normal(gen) : normal(gen);
    }
  }
  return rows;
}

void put_rows(EmbeddingCache& cache, const Matrix& rows, std::size_t first_key) {
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < rows.rows(); ++i) keys.push_back(key_of(first_key + i));
  cache.put_batch(keys, rows.view());
}

bool same_bits(float a, float b) {
  return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

void expect_same_hits(const std::vector<std::vector<KeyHit>>& want,
                      const std::vector<std::vector<KeyHit>>& got, const std::string& what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  for (std::size_t q = 0; q < want.size(); ++q) {
    ASSERT_EQ(want[q].size(), got[q].size()) << what << " query " << q;
    for (std::size_t h = 0; h < want[q].size(); ++h) {
      EXPECT_EQ(want[q][h].key, got[q][h].key) << what << " query " << q << " hit " << h;
      EXPECT_TRUE(same_bits(want[q][h].score, got[q][h].score))
          << what << " query " << q << " hit " << h << ": " << want[q][h].score << " vs "
          << got[q][h].score;
    }
  }
}

TEST(CompactCache, HoldsMoreEntriesInTheSameBytes) {
  constexpr std::size_t kDim = 768, kKeys = 12000;
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix rows(kKeys, kDim);
  for (std::size_t i = 0; i < kKeys; ++i)
    for (std::size_t j = 0; j < kDim; ++j) rows.row(i)[j] = normal(gen);
  std::size_t entries[4] = {};
  for (const StorageType type :
       {StorageType::F32, StorageType::F16, StorageType::Bf16, StorageType::I8}) {
    CacheOptions options = options_for(kDim, type, ScoreMode::Fast);
    options.max_bytes = std::size_t{8} << 20;
    EmbeddingCache cache(options);
    put_rows(cache, rows, 0);
    const CacheStats stats = cache.stats();
    EXPECT_LE(stats.bytes, options.max_bytes) << to_string(type);
    EXPECT_GT(stats.evictions, 0u) << to_string(type) << ": the bound was never reached";
    entries[static_cast<int>(type)] = stats.entries;
  }
  const auto ratio = [&](StorageType type) {
    return static_cast<double>(entries[static_cast<int>(type)]) / static_cast<double>(entries[0]);
  };
  // Per entry at d = 768 with these keys: f32 3072 + 105 bytes, bf16 / f16 1536 + 40 + 105,
  // int8 768 + 48 + 105 (the row, its bounds, the key and the index).
  EXPECT_GE(ratio(StorageType::F16), 1.85) << entries[1] << " f16 vs " << entries[0] << " f32";
  EXPECT_GE(ratio(StorageType::Bf16), 1.85) << entries[2] << " bf16 vs " << entries[0] << " f32";
  EXPECT_GE(ratio(StorageType::I8), 3.3) << entries[3] << " i8 vs " << entries[0] << " f32";
}

TEST(CompactCache, ReadsReturnTheStoredRow) {
  constexpr std::size_t kDim = 37;
  const Matrix rows = clustered_rows(40, kDim, 3);
  SimilarityEngine engine;
  for (const StorageType type : kCompactTypes) {
    EmbeddingCache cache(options_for(kDim, type, ScoreMode::Fast));
    put_rows(cache, rows, 0);
    const CompactSet stored = engine.compact_set(rows.view(), type, false);
    std::vector<float> out(kDim);
    for (std::size_t i = 0; i < rows.rows(); ++i) {
      ASSERT_TRUE(cache.get(key_of(i), out));
      const std::vector<float> want = stored.decoded_row(i);
      for (std::size_t j = 0; j < kDim; ++j)
        ASSERT_TRUE(same_bits(want[j], out[j])) << to_string(type) << " row " << i;
    }
    // A batch read too (one lock per shard, the prefetching path).
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < rows.rows(); ++i) keys.push_back(key_of(i));
    Matrix batch(rows.rows(), kDim);
    const auto found = cache.get_batch(keys, batch.mutable_view());
    for (std::size_t i = 0; i < rows.rows(); ++i) {
      ASSERT_TRUE(found[i]);
      const std::vector<float> want = stored.decoded_row(i);
      for (std::size_t j = 0; j < kDim; ++j) ASSERT_TRUE(same_bits(want[j], batch.row(i)[j]));
    }
  }
}

// The f32 cache and a compact one given the same writes -- near-duplicate clusters, keys removed
// (dead rows), overwritten, and copies of the queries that expire before the search (the best
// rows of their slabs, not live) -- answer every search alike.
TEST(CompactCache, ExactSearchIsTheF32Search) {
  constexpr std::size_t kDim = 45, kRows = 2400, kQueries = 12;
  const Matrix rows = clustered_rows(kRows, kDim, 11);
  const Matrix rewrites = clustered_rows(100, kDim, 12);
  // Even queries sit next to a row of a cluster (many candidates within the bounds), odd ones
  // anywhere (their expired copies are far better than any live row).
  Matrix queries = clustered_rows(kQueries, kDim, 13);
  for (std::size_t q = 0; q < kQueries; q += 2) {
    std::copy_n(rows.row(q * 97 + 5), kDim, queries.row(q));
    queries.row(q)[q % kDim] += 0.01f;
  }
  std::vector<std::string> removed;
  for (std::size_t i = 0; i < kRows; i += 7) removed.push_back(key_of(i));

  const auto write = [&](EmbeddingCache& cache) {
    put_rows(cache, rows, 0);
    put_rows(cache, rewrites, 300);
    for (const auto& key : removed) cache.remove(key);
    // Copies of every query, each the best row of its slab, expired at search time.
    for (std::size_t copy = 0; copy < 16; ++copy) {
      std::vector<std::string> keys;
      for (std::size_t q = 0; q < kQueries; ++q)
        keys.push_back("expired-" + std::to_string(copy) + "-" + std::to_string(q));
      cache.put_batch(keys, queries.view(), 1ms);
    }
  };
  EmbeddingCache f32(options_for(kDim, StorageType::F32, ScoreMode::Exact));
  write(f32);
  for (const StorageType type : kCompactTypes) {
    TempDir dir;
    CacheOptions options = options_for(kDim, type, ScoreMode::Exact);
    options.durable = RocksDbOptions{};
    options.durable->path = dir.sub("db");
    EmbeddingCache compact(options);
    write(compact);
    std::this_thread::sleep_for(20ms);
    for (const Metric metric : {Metric::Cosine, Metric::Dot, Metric::L2}) {
      for (const std::size_t k : {std::size_t{1}, std::size_t{10}, std::size_t{60}}) {
        for (const Tier tier : {Tier::Sequential, Tier::Cpu}) {
          const std::string what = std::string(to_string(type)) + " " +
                                   std::string(to_string(metric)) + " k " + std::to_string(k) +
                                   " " + std::string(to_string(tier));
          const auto want = f32.search(queries.view(), k, metric, tier);
          for (const auto& hits : want)
            for (const KeyHit& h : hits) ASSERT_EQ(h.key.find("expired"), std::string::npos);
          expect_same_hits(want, compact.search(queries.view(), k, metric, tier), what);
        }
      }
    }
    const CacheStats stats = compact.stats();
    EXPECT_GT(stats.rescored_keys, 0u);
    // The bounds rule out most rows: far fewer values read than queries x rows.
    EXPECT_LT(stats.rescored_keys, 18 * kQueries * kRows / 10) << to_string(type);
  }
}

// Two rows whose compact keys order them the other way round from their f32 keys (as in
// compact_test.cpp: row "best"'s first half stored rounded down by almost half a unit in every
// element, which "bumped"'s one larger element beats only after encoding), among rows that score
// below both: the cache's narrowing across shards must keep "best", which the compact key alone
// would drop.
TEST(CompactCache, ExactSearchKeepsARowTheCompactKeysRankSecond) {
  constexpr std::size_t kDim = 96, kHalf = kDim / 2;
  for (const StorageType type : {StorageType::Bf16, StorageType::F16}) {
    const float a = type == StorageType::Bf16 ? 1.0f + 0.99f * 0x1p-8f : 1.0f + 0.99f * 0x1p-11f;
    const float bump = type == StorageType::Bf16 ? 1.125f : 1.0f + 0x1p-6f;
    Matrix rows(2, kDim), query(1, kDim);
    for (std::size_t i = 0; i < kDim; ++i) {
      rows(0, i) = i < kHalf ? a : 0.0f;
      rows(1, i) = i < kHalf ? 0.0f : (i == kHalf ? bump : 1.0f);
      query(0, i) = 1.0f;
    }
    const Matrix fillers = clustered_rows(300, kDim, 21);  // Dot with all-ones: far below 48
    TempDir dir;
    CacheOptions options = options_for(kDim, type, ScoreMode::Exact);
    options.durable = RocksDbOptions{};
    options.durable->path = dir.sub("db");
    EmbeddingCache exact(options);
    options.durable.reset();
    options.search_mode = ScoreMode::Fast;
    EmbeddingCache fast(options);
    for (EmbeddingCache* cache : {&exact, &fast}) {
      put_rows(*cache, fillers, 0);
      cache->put_batch(std::vector<std::string>{"best", "bumped"}, rows.view());
    }
    ASSERT_EQ(fast.search(query.view(), 1, Metric::Dot)[0][0].key, "bumped")
        << "the data no longer fools the compact keys";
    const auto hits = exact.search(query.view(), 1, Metric::Dot);
    ASSERT_EQ(hits[0].size(), 1u);
    EXPECT_EQ(hits[0][0].key, "best") << to_string(type);
  }
}

TEST(CompactCache, FastSearchRanksByTheCompactScores) {
  constexpr std::size_t kDim = 96, kRows = 3000, kQueries = 20, kK = 10;
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix rows(kRows, kDim), queries(kQueries, kDim);
  for (std::size_t i = 0; i < kRows; ++i)
    for (std::size_t j = 0; j < kDim; ++j) rows.row(i)[j] = normal(gen);
  for (std::size_t q = 0; q < kQueries; ++q)
    for (std::size_t j = 0; j < kDim; ++j) queries.row(q)[j] = normal(gen);
  EmbeddingCache f32(options_for(kDim, StorageType::F32, ScoreMode::Fast));
  put_rows(f32, rows, 0);
  const auto want = f32.search(queries.view(), kK, Metric::Cosine);
  for (const StorageType type : kCompactTypes) {
    EmbeddingCache compact(options_for(kDim, type, ScoreMode::Fast));
    put_rows(compact, rows, 0);
    const auto got = compact.search(queries.view(), kK, Metric::Cosine);
    std::size_t found = 0;
    double worst = 0.0;
    for (std::size_t q = 0; q < kQueries; ++q) {
      ASSERT_EQ(got[q].size(), kK);
      std::set<std::string> truth;
      for (const KeyHit& h : want[q]) truth.insert(h.key);
      for (std::size_t h = 0; h < kK; ++h) {
        found += truth.count(got[q][h].key);
        if (h > 0) {
          EXPECT_GE(got[q][h - 1].score, got[q][h].score);
        }
      }
      worst = std::max(worst, std::abs(static_cast<double>(got[q][0].score) - want[q][0].score));
    }
    const double recall = static_cast<double>(found) / (kQueries * kK);
    EXPECT_GE(recall, type == StorageType::I8 ? 0.8 : 0.9) << to_string(type);
    // Cosine scores of unit-scale rows: within a few units of the type's rounding.
    EXPECT_LT(worst, type == StorageType::I8 ? 0.05 : 0.01) << to_string(type);
    // A rescoring search never ran.
    EXPECT_EQ(compact.stats().rescored_keys, 0u);
  }
}

TEST(CompactCache, RefusesWhatItCannotDo) {
  expect_error(ErrorCode::InvalidArgument, "durable store",
               [] { EmbeddingCache cache(options_for(8, StorageType::Bf16, ScoreMode::Exact)); });
  expect_error(ErrorCode::InvalidArgument, "search_on_gpu", [] {
    CacheOptions options = options_for(8, StorageType::I8, ScoreMode::Fast);
    options.search_on_gpu = true;
    EmbeddingCache cache(options);
  });
  // F32 ignores the search mode: exact needs no durable store there.
  EmbeddingCache plain(options_for(8, StorageType::F32, ScoreMode::Exact));
  EXPECT_EQ(plain.stats().entries, 0u);
}

}  // namespace
}  // namespace hetcache::test
