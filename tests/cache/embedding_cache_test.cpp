// EmbeddingCache through its public API, memory tier only: operations, TTL, batches,
// get_or_compute, content keys, search, stats, health, and bad input that changes nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <thread>

#include "cache/cache_test_util.hpp"
#include "reference.hpp"

namespace hetcache::test {
namespace {

using namespace std::chrono_literals;

CacheOptions memory_options(std::size_t dim, std::size_t max_entries = 0) {
  CacheOptions options;
  options.dim = dim;
  options.max_entries = max_entries;
  options.max_bytes = std::size_t{256} << 20;
  return options;
}

TEST(EmbeddingCache, PutGetContainsRemoveClear) {
  EmbeddingCache cache(memory_options(24));
  const auto v = vector_for("a", 1, 24);
  EXPECT_FALSE(cache.get("a").has_value());
  cache.put("a", v);
  ASSERT_TRUE(cache.get("a").has_value());
  EXPECT_TRUE(row_equals(cache.get("a")->data(), v));
  EXPECT_TRUE(cache.contains("a"));
  cache.put("a", vector_for("a", 2, 24));
  EXPECT_TRUE(row_equals(cache.get("a")->data(), vector_for("a", 2, 24)));
  EXPECT_TRUE(cache.remove("a"));
  EXPECT_FALSE(cache.remove("a"));
  EXPECT_FALSE(cache.contains("a"));
  cache.put("b", v);
  cache.clear();
  EXPECT_FALSE(cache.contains("b"));
  EXPECT_EQ(cache.stats().entries, 0u);
}

TEST(EmbeddingCache, TtlExpiresAndHugeTtlNeverDoes) {
  EmbeddingCache cache(memory_options(8));
  const auto v = vector_for("x", 1, 8);
  cache.put("short", v, 60ms);
  cache.put("huge", v, std::chrono::milliseconds::max());
  cache.put("long", v, std::chrono::hours(24 * 365 * 1000));
  EXPECT_TRUE(cache.contains("short"));
  std::this_thread::sleep_for(120ms);
  EXPECT_FALSE(cache.get("short").has_value());
  EXPECT_TRUE(cache.contains("huge"));
  EXPECT_TRUE(cache.contains("long"));
  EXPECT_EQ(cache.stats().expired, 1u);
  EXPECT_EQ(cache.cleanup_expired(), 1u);
  EXPECT_EQ(cache.stats().entries, 2u);
  expect_error(ErrorCode::InvalidArgument, "ttl must be positive", [&] { cache.put("z", v, 0ms); });
  expect_error(ErrorCode::InvalidArgument, "ttl must be positive",
               [&] { cache.put("z", v, -5ms); });
  EXPECT_FALSE(cache.contains("z"));
}

TEST(EmbeddingCache, BatchGetFillsHitsAndLeavesMissesUntouched) {
  EmbeddingCache cache(memory_options(19));
  const auto keys = make_keys("k", 100);
  const Matrix values = matrix_for(keys, 1, 19);
  cache.put_batch(keys, values);
  std::vector<std::string> wanted = {"k5", "nope", "k99", "k5", "other"};
  Matrix out(wanted.size(), 19);
  for (std::size_t r = 0; r < out.rows(); ++r) std::fill(out.row(r), out.row(r) + 19, -9.0f);
  const auto mask = cache.get_batch(wanted, out.mutable_view());
  EXPECT_EQ(mask, (std::vector<std::uint8_t>{1, 0, 1, 1, 0}));
  EXPECT_TRUE(row_equals(out.row(0), vector_for("k5", 1, 19)));
  EXPECT_TRUE(row_equals(out.row(2), vector_for("k99", 1, 19)));
  EXPECT_TRUE(row_equals(out.row(3), vector_for("k5", 1, 19)));
  EXPECT_EQ(out(1, 0), -9.0f);
  EXPECT_EQ(out(4, 18), -9.0f);
  const CacheStats s = cache.stats();
  EXPECT_EQ(s.hits, 3u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.get_batch_calls, 1u);
  EXPECT_EQ(s.put_batch_calls, 1u);
}

TEST(EmbeddingCache, BadInputIsRejectedAndChangesNothing) {
  EmbeddingCache cache(memory_options(4));
  const std::vector<float> good = {1, 2, 3, 4};
  cache.put("keep", good);
  const std::vector<float> other = {5, 6, 7, 8};
  expect_error(ErrorCode::InvalidArgument, "key #0 is empty", [&] { cache.put("", good); });
  expect_error(ErrorCode::InvalidArgument, "65536",
               [&] { cache.put(std::string(65537, 'k'), good); });
  expect_error(ErrorCode::DimensionMismatch, "has 3 floats", [&] {
    cache.put("keep", std::vector<float>{1, 2, 3});
  });
  const std::vector<float> nan = {1, std::nanf(""), 3, 4};
  const std::vector<float> inf = {1, 2, INFINITY, 4};
  expect_error(ErrorCode::InvalidArgument, "non-finite number at index 1",
               [&] { cache.put("keep", nan); });
  expect_error(ErrorCode::InvalidArgument, "non-finite number at index 2",
               [&] { cache.put("keep", inf); });
  // A batch with one bad row stores none of its rows.
  const std::vector<std::string> keys = {"new1", "keep", "new2"};
  Matrix batch(3, 4);
  for (std::size_t r = 0; r < 3; ++r) std::copy(other.begin(), other.end(), batch.row(r));
  batch(2, 3) = NAN;
  expect_error(ErrorCode::InvalidArgument, "key #2 'new2'",
               [&] { cache.put_batch(keys, batch.view()); });
  expect_error(ErrorCode::InvalidArgument, "has 3 rows for 2 keys", [&] {
    cache.put_batch(std::vector<std::string>{"a", "b"}, batch.view());
  });
  Matrix wrong_dim(3, 5);
  expect_error(ErrorCode::DimensionMismatch, "has dim 5",
               [&] { cache.get_batch(keys, wrong_dim.mutable_view()); });
  Matrix wrong_rows(2, 4);
  expect_error(ErrorCode::InvalidArgument, "has 2 rows for 3 keys",
               [&] { cache.get_batch(keys, wrong_rows.mutable_view()); });
  EXPECT_FALSE(cache.contains("new1"));
  EXPECT_FALSE(cache.contains("new2"));
  EXPECT_TRUE(row_equals(cache.get("keep")->data(), good));
  EXPECT_EQ(cache.stats().entries, 1u);
  expect_error(ErrorCode::InvalidArgument, "cache dim must be > 0",
               [] { EmbeddingCache bad(CacheOptions{}); });
}

TEST(EmbeddingCache, NonFiniteValuesWhenAllowed) {
  CacheOptions options = memory_options(2);
  options.allow_non_finite = true;
  EmbeddingCache cache(options);
  cache.put("n", std::vector<float>{NAN, 1});
  EXPECT_TRUE(std::isnan((*cache.get("n"))[0]));
}

TEST(EmbeddingCache, BoundsHoldThroughTheApiAndOverwritesDoNotEvict) {
  EmbeddingCache cache(memory_options(32, 500));
  const auto keys = make_keys("k", 500);
  cache.put_batch(keys, matrix_for(keys, 1, 32).view());
  // Each shard holds its share of the bound, so a few of 500 keys may already have been evicted.
  Matrix out(keys.size(), 32);
  const auto mask = cache.get_batch(keys, out.mutable_view());
  std::vector<std::string> present;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (mask[i]) present.push_back(keys[i]);
  }
  ASSERT_GT(present.size(), 450u);
  const auto before = cache.stats().evictions;
  cache.put_batch(present, matrix_for(present, 2, 32).view());
  EXPECT_EQ(cache.stats().evictions, before) << "overwriting a present key evicted another";
  const auto more = make_keys("m", 2000);
  cache.put_batch(more, matrix_for(more, 1, 32).view());
  const CacheStats s = cache.stats();
  EXPECT_LE(s.entries, 500u);
  EXPECT_EQ(s.evictions - before, present.size() + 2000 - s.entries);
}

TEST(EmbeddingCache, GetOrComputeComputesOnlyDistinctMisses) {
  EmbeddingCache cache(memory_options(16));
  cache.put("have", vector_for("have", 1, 16));
  const std::vector<std::string> keys = {"a", "have", "b", "a", "c", "b"};
  Matrix out(keys.size(), 16);
  int calls = 0;
  std::vector<std::string> asked;
  const auto embed = [&](std::span<const std::string> missing) {
    ++calls;
    asked.assign(missing.begin(), missing.end());
    return matrix_for(asked, 1, 16);
  };
  EXPECT_EQ(cache.get_or_compute(keys, out.mutable_view(), embed), 3u);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(asked, (std::vector<std::string>{"a", "b", "c"}));
  for (std::size_t i = 0; i < keys.size(); ++i)
    EXPECT_TRUE(row_equals(out.row(i), vector_for(keys[i], 1, 16))) << i;
  EXPECT_EQ(cache.get_or_compute(keys, out.mutable_view(), embed), 0u);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(cache.contains("c"));
  EXPECT_EQ(cache.stats().embedded_keys, 3u);
}

TEST(EmbeddingCache, GetOrComputeFailureStoresNothing) {
  EmbeddingCache cache(memory_options(8));
  const std::vector<std::string> keys = {"a", "b"};
  Matrix out(2, 8);
  EXPECT_THROW(cache.get_or_compute(keys, out.mutable_view(),
                                    [](std::span<const std::string>) -> Matrix {
                                      throw std::runtime_error("model down");
                                    }),
               std::runtime_error);
  expect_error(ErrorCode::InvalidArgument, "embed returned 1 x 8 for 2 keys", [&] {
    cache.get_or_compute(keys, out.mutable_view(),
                         [](std::span<const std::string>) { return Matrix(1, 8); });
  });
  expect_error(ErrorCode::InvalidArgument, "non-finite", [&] {
    cache.get_or_compute(keys, out.mutable_view(), [](std::span<const std::string> k) {
      Matrix m = matrix_for({k.begin(), k.end()}, 1, 8);
      m(1, 2) = NAN;
      return m;
    });
  });
  EXPECT_FALSE(cache.contains("a"));
  EXPECT_FALSE(cache.contains("b"));
  // A later call can still compute them (no flight was left behind).
  EXPECT_EQ(cache.get_or_compute(keys, out.mutable_view(),
                                 [](std::span<const std::string> k) {
                                   return matrix_for({k.begin(), k.end()}, 1, 8);
                                 }),
            2u);
}

// Many callers miss the same keys at once: each key is computed once, everyone gets its vector.
TEST(EmbeddingCache, ConcurrentMissesAreComputedOnce) {
  EmbeddingCache cache(memory_options(8));
  const auto keys = make_keys("k", 50);
  std::atomic<int> computed_keys{0}, calls{0};
  const auto embed = [&](std::span<const std::string> missing) {
    calls.fetch_add(1);
    computed_keys.fetch_add(static_cast<int>(missing.size()));
    std::this_thread::sleep_for(50ms);  // long enough that the other callers arrive meanwhile
    return matrix_for({missing.begin(), missing.end()}, 1, 8);
  };
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::string> mine(keys.begin() + t * 3, keys.begin() + t * 3 + 26);
      Matrix out(mine.size(), 8);
      cache.get_or_compute(mine, out.mutable_view(), embed);
      for (std::size_t i = 0; i < mine.size(); ++i)
        wrong += !row_equals(out.row(i), vector_for(mine[i], 1, 8));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(computed_keys.load(), 47);  // keys k0..k46, each once
}

// The exception of the computing caller reaches the callers waiting on its keys.
TEST(EmbeddingCache, ConcurrentWaitersSeeTheException) {
  EmbeddingCache cache(memory_options(8));
  const std::vector<std::string> keys = {"x", "y"};
  std::atomic<int> failures{0}, calls{0};
  const auto embed = [&](std::span<const std::string>) -> Matrix {
    calls.fetch_add(1);
    std::this_thread::sleep_for(100ms);
    throw std::runtime_error("embedder exploded");
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      Matrix out(2, 8);
      try {
        cache.get_or_compute(keys, out.mutable_view(), embed);
      } catch (const std::runtime_error& e) {
        if (std::string(e.what()) == "embedder exploded") failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 6);
  EXPECT_LT(calls.load(), 6);  // the waiters did not each call the embedder
  EXPECT_FALSE(cache.contains("x"));
}

TEST(EmbeddingCache, ContentKeyIsStableAndFieldSeparated) {
  EmbeddingCache cache(memory_options(768));
  const std::string key = cache.content_key("all-MiniLM-L6-v2", "hello world");
  EXPECT_EQ(key.size(), 32u);
  EXPECT_EQ(key, content_key("all-MiniLM-L6-v2", 768, "hello world"));
  EXPECT_NE(content_key("ab", 768, "c"), content_key("a", 768, "bc"));
  EXPECT_NE(content_key("m", 768, "t"), content_key("m", 384, "t"));
  // Golden value: keys must not change across versions. Computed independently with
  //   python3 -c "import struct,sys; f=lambda b: struct.pack('<Q',len(b))+b;
  //     sys.stdout.buffer.write(f(b'm')+f(b'768')+f(b'f32')+f(b't'))" | xxhsum -H2
  EXPECT_EQ(content_key("m", 768, "t"), "b07444c252f7df362cd4aece05443757");
}

TEST(EmbeddingCache, SearchAndSimilarityOverCachedVectors) {
  std::mt19937_64 rng(test_seed());
  EmbeddingCache cache(memory_options(37));
  const auto keys = make_keys("doc", 3000);
  const Matrix values = matrix_for(keys, 1, 37);
  cache.put_batch(keys, values.view());
  const TestMatrix queries = random_rows(rng, 4, 37);
  const SimilarityEngine engine;
  for (const Metric metric : {Metric::Dot, Metric::Cosine, Metric::L2}) {
    const auto hits = cache.search(queries.view(), 10, metric);
    const auto expected =
        expected_key_hits(engine, queries.view(), values.view(), keys, 10, metric);
    ASSERT_EQ(hits.size(), 4u);
    for (std::size_t q = 0; q < 4; ++q) {
      ASSERT_EQ(hits[q].size(), 10u);
      for (std::size_t h = 0; h < 10; ++h) {
        EXPECT_EQ(hits[q][h].key, expected[q][h].key);
        EXPECT_EQ(hits[q][h].score, expected[q][h].score);
      }
    }
  }
  EXPECT_TRUE(cache.search(queries.view(), 0).at(0).empty());
  const TestMatrix wrong = random_rows(rng, 1, 36);
  expect_error(ErrorCode::DimensionMismatch, "queries have dim 36",
               [&] { cache.search(wrong.view(), 3); });

  const std::vector<std::string> some = {"doc7", "missing", "doc2999"};
  const std::vector<float> query(queries.row(0), queries.row(0) + 37);
  const KeyScores scores = cache.similarity(query, some, Metric::Dot);
  EXPECT_EQ(scores.found, (std::vector<std::uint8_t>{1, 0, 1}));
  const auto direct = engine.batch_similarity_search(query, values.view(), Metric::Dot);
  EXPECT_EQ(scores.scores[0], direct[7]);
  EXPECT_TRUE(std::isnan(scores.scores[1]));
  EXPECT_EQ(scores.scores[2], direct[2999]);
}

TEST(EmbeddingCache, HealthReportsCapacityAndHitRate) {
  CacheOptions options = memory_options(8, 200);
  EmbeddingCache cache(options);
  EXPECT_EQ(cache.health().status, HealthStatus::Healthy);
  const auto keys = make_keys("k", 1000);
  cache.put_batch(keys, matrix_for(keys, 1, 8).view());
  Matrix out(keys.size(), 8);
  cache.get_batch(keys, out.mutable_view());  // ~80% misses
  const CacheHealth health = cache.health();
  EXPECT_EQ(health.status, HealthStatus::Degraded);
  ASSERT_EQ(health.reasons.size(), 2u);
  EXPECT_NE(health.reasons[0].find("evicting"), std::string::npos) << health.reasons[0];
  EXPECT_NE(health.reasons[1].find("hit rate"), std::string::npos) << health.reasons[1];
}

}  // namespace
}  // namespace hetcache::test
