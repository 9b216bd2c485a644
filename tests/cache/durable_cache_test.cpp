// EmbeddingCache over the embedded RocksDB store: persistence, read-through, write-through,
// metadata checks, locking, expiry dropped by compaction, and corrupted values never returned.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "cache/cache_test_util.hpp"
#include "reference.hpp"
#include "support/raw_rocksdb.hpp"

namespace hetcache::test {
namespace {

using namespace std::chrono_literals;
using testing::RawDb;

CacheOptions durable_options(const std::string& path, std::size_t dim,
                             std::size_t max_entries = 0) {
  CacheOptions options;
  options.dim = dim;
  options.max_entries = max_entries;
  options.max_bytes = std::size_t{256} << 20;
  options.durable = RocksDbOptions{};
  options.durable->path = path;
  return options;
}

TEST(DurableCache, SurvivesReopenAndReadsThrough) {
  TempDir dir;
  const auto keys = make_keys("k", 2000);
  {
    EmbeddingCache cache(durable_options(dir.sub("db"), 48));
    EXPECT_TRUE(cache.has_durable_store());
    cache.put_batch(keys, matrix_for(keys, 1, 48).view());
    cache.put("single", vector_for("single", 3, 48));
    EXPECT_TRUE(cache.remove("k7"));
  }
  EmbeddingCache cache(durable_options(dir.sub("db"), 48));
  EXPECT_EQ(cache.stats().entries, 0u);  // memory starts empty
  Matrix out(keys.size(), 48);
  const auto mask = cache.get_batch(keys, out.mutable_view());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(mask[i], i == 7 ? 0 : 1) << keys[i];
    if (i != 7) {
      ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], 1, 48)));
    }
  }
  EXPECT_TRUE(row_equals(cache.get("single")->data(), vector_for("single", 3, 48)));
  const CacheStats s = cache.stats();
  EXPECT_EQ(s.durable_hits, 2000u);
  EXPECT_EQ(s.entries, 2000u);  // read through into memory
  cache.get_batch(keys, out.mutable_view());
  EXPECT_EQ(cache.stats().memory_hits, 1999u);
}

// Vectors reloaded from disk get their norms when they enter the memory store: after a reopen,
// Cosine and L2 search over what was read back (half of it overwritten before the reopen) equal an
// engine search over the current values, bit for bit.
TEST(DurableCache, SearchAfterReopenUsesTheNormsOfTheReloadedValues) {
  TempDir dir;
  const auto keys = make_keys("k", 600);
  const std::vector<std::string> second_half(keys.begin() + 300, keys.end());
  {
    EmbeddingCache cache(durable_options(dir.sub("db"), 48));
    cache.put_batch(keys, matrix_for(keys, 1, 48).view());
    cache.put_batch(second_half, matrix_for(second_half, 2, 48).view());
  }
  EmbeddingCache cache(durable_options(dir.sub("db"), 48));
  Matrix current(keys.size(), 48);
  const auto mask = cache.get_batch(keys, current.mutable_view());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(mask[i], 1);
    ASSERT_TRUE(row_equals(current.row(i), vector_for(keys[i], i < 300 ? 1 : 2, 48))) << keys[i];
  }
  std::mt19937_64 rng(test_seed());
  const TestMatrix queries = random_rows(rng, 3, 48);
  const SimilarityEngine engine;
  for (const Metric metric : {Metric::Cosine, Metric::L2}) {
    const auto hits = cache.search(queries.view(), 15, metric);
    const auto expected =
        expected_key_hits(engine, queries.view(), current.view(), keys, 15, metric);
    for (std::size_t q = 0; q < 3; ++q) {
      ASSERT_EQ(hits[q].size(), 15u);
      for (std::size_t h = 0; h < 15; ++h) {
        EXPECT_EQ(hits[q][h].key, expected[q][h].key);
        EXPECT_EQ(hits[q][h].score, expected[q][h].score);
      }
    }
  }
}

TEST(DurableCache, EvictedEntriesComeBackFromDisk) {
  TempDir dir;
  {
    EmbeddingCache cache(durable_options(dir.sub("db"), 16, 300));
    const auto keys = make_keys("k", 3000);
    cache.put_batch(keys, matrix_for(keys, 1, 16).view());
    EXPECT_LE(cache.stats().entries, 300u);
    EXPECT_GT(cache.stats().evictions, 0u);
    Matrix out(keys.size(), 16);
    const auto mask = cache.get_batch(keys, out.mutable_view());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      ASSERT_EQ(mask[i], 1);
      ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], 1, 16)));
    }
    EXPECT_LE(cache.stats().entries, 300u);
    cache.clear();
    EXPECT_FALSE(cache.contains("k1"));
  }
  EXPECT_EQ(RawDb(dir.sub("db")).count(), 0u);
}

TEST(DurableCache, OtherDimensionIsAClearError) {
  TempDir dir;
  { EmbeddingCache cache(durable_options(dir.sub("db"), 768)); }
  try {
    EmbeddingCache cache(durable_options(dir.sub("db"), 384));
    FAIL() << "opened a dim-768 database as dim 384";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::DimensionMismatch);
    EXPECT_NE(std::string(e.what()).find("the collection 'default' of the database '" +
                                         dir.sub("db") + "' holds dim 768; this cache has dim 384"),
              std::string::npos)
        << e.what();
  }
}

TEST(DurableCache, LockedAndUnusableDirectoriesAreClearErrors) {
  TempDir dir;
  EmbeddingCache first(durable_options(dir.sub("db"), 8));
  try {
    EmbeddingCache second(durable_options(dir.sub("db"), 8));
    FAIL() << "opened a locked database";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::StoreUnavailable);
    EXPECT_NE(std::string(e.what()).find("is locked"), std::string::npos) << e.what();
  }
  std::ofstream(dir.sub("file")) << "not a directory";
  try {
    EmbeddingCache bad(durable_options(dir.sub("file") + "/db", 8));
    FAIL() << "opened a database under a regular file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::StoreUnavailable);
    EXPECT_NE(std::string(e.what()).find(dir.sub("file")), std::string::npos) << e.what();
  }
}

TEST(DurableCache, ExpiredValuesAreMissesAndDroppedByCompaction) {
  TempDir dir;
  const auto short_keys = make_keys("s", 100);
  const auto long_keys = make_keys("l", 50);
  {
    EmbeddingCache cache(durable_options(dir.sub("db"), 8));
    cache.put_batch(short_keys, matrix_for(short_keys, 1, 8).view(), 50ms);
    cache.put_batch(long_keys, matrix_for(long_keys, 1, 8).view());
    std::this_thread::sleep_for(100ms);
    EXPECT_FALSE(cache.contains("s3"));
  }
  {
    // Another process sees them expired too: the expiry is stored, in wall-clock time.
    EmbeddingCache cache(durable_options(dir.sub("db"), 8));
    EXPECT_FALSE(cache.get("s3").has_value());
    EXPECT_TRUE(cache.get("l3").has_value());
    EXPECT_EQ(cache.stats().expired, 1u);
  }
  EXPECT_EQ(RawDb(dir.sub("db")).count(), 150u);  // still on disk until a compaction
  {
    EmbeddingCache cache(durable_options(dir.sub("db"), 8));
    cache.compact();
  }
  EXPECT_EQ(RawDb(dir.sub("db")).count(), 50u);
}

// Damaged values: flipped bytes, truncation, a value copied under another key, a wrong dimension.
// None may come back as data; each counts as corrupt, is a miss, and is logged once.
TEST(DurableCache, CorruptValuesAreNeverReturned) {
  TempDir dir;
  const auto keys = make_keys("k", 200);
  {
    EmbeddingCache cache(durable_options(dir.sub("db"), 32));
    cache.put_batch(keys, matrix_for(keys, 1, 32).view());
  }
  std::set<std::string> damaged;
  {
    RawDb raw(dir.sub("db"));
    std::mt19937_64 rng(test_seed());
    for (std::size_t i = 0; i < keys.size(); i += 2) {
      std::string value = raw.get(keys[i]);
      switch (i % 8) {
        case 0:
          value[rng() % value.size()] ^= static_cast<char>(1 + rng() % 255);
          break;
        case 2:
          value.resize(value.size() - 1 - rng() % 40);
          break;
        case 4:
          value = raw.get(keys[i + 1]);
          break;  // a valid value, but of another key
        case 6:
          value[8] = 31;
          break;  // dimension field
      }
      raw.put(keys[i], value);
      damaged.insert(keys[i]);
    }
  }
  std::vector<std::string> logs;
  std::mutex log_mutex;
  CacheOptions options = durable_options(dir.sub("db"), 32);
  options.log = [&](std::string_view line) {
    std::lock_guard lock(log_mutex);
    logs.emplace_back(line);
  };
  EmbeddingCache cache(options);
  for (int round = 0; round < 2; ++round) {
    Matrix out(keys.size(), 32);
    const auto mask = cache.get_batch(keys, out.mutable_view());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (damaged.count(keys[i])) {
        ASSERT_EQ(mask[i], 0) << keys[i];
      } else {
        ASSERT_EQ(mask[i], 1) << keys[i];
        ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], 1, 32)));
      }
    }
  }
  EXPECT_EQ(cache.stats().corrupt_reads, 2 * damaged.size());
  EXPECT_EQ(logs.size(), damaged.size());  // once per key, not per read
  // Each line names the key and the store as its name() spells it.
  EXPECT_NE(logs.front().find(" in RocksDB '" + dir.sub("db") + "' ("), std::string::npos)
      << logs.front();
  EXPECT_EQ(cache.health().status, HealthStatus::Degraded);
  // Writing the key again repairs it.
  cache.put("k0", vector_for("k0", 2, 32));
  EXPECT_TRUE(row_equals(cache.get("k0")->data(), vector_for("k0", 2, 32)));
}

// scan: every live value once, in key order, in batches of at most batch_rows, with its stored
// floats; expired and damaged values skipped and counted; a visitor's exception reaches the caller.
TEST(DurableCache, ScanVisitsEveryLiveValueInKeyOrder) {
  TempDir dir;
  const auto keys = make_keys("k", 1000), expiring = make_keys("e", 100);
  {
    EmbeddingCache cache(durable_options(dir.sub("db"), 16));
    cache.put_batch(keys, matrix_for(keys, 1, 16).view());
    EXPECT_EQ(cache.estimated_durable_count(), 1000u);  // only added to: exact
    cache.put_batch(expiring, matrix_for(expiring, 1, 16).view(), 30ms);
    std::this_thread::sleep_for(60ms);
  }
  {
    RawDb raw(dir.sub("db"));
    for (std::size_t i = 0; i < 10; ++i) {
      std::string value = raw.get(keys[i * 97]);
      value[value.size() / 2] ^= 0x5A;
      raw.put(keys[i * 97], value);
    }
  }
  EmbeddingCache cache(durable_options(dir.sub("db"), 16));
  const auto estimate = cache.estimated_durable_count();
  ASSERT_TRUE(estimate.has_value());
  EXPECT_GE(*estimate, 1100u);
  EXPECT_LE(*estimate, 1110u);  // the 10 rewritten values may be counted twice
  std::vector<std::string> seen;
  std::size_t batches = 0;
  const ScanCounts counts = cache.scan(
      [&](std::span<const std::string> batch, auto, MatrixView rows) {
        ++batches;
        ASSERT_LE(batch.size(), 64u);
        ASSERT_EQ(rows.rows(), batch.size());
        for (std::size_t i = 0; i < batch.size(); ++i) {
          ASSERT_TRUE(row_equals(rows.row(i), vector_for(batch[i], 1, 16))) << batch[i];
          seen.push_back(batch[i]);
        }
      },
      64);
  EXPECT_EQ(counts.visited, 990u);
  EXPECT_EQ(counts.expired, 100u);
  EXPECT_EQ(counts.corrupt, 10u);
  EXPECT_EQ(seen.size(), 990u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end());
  EXPECT_EQ(batches, (990u + 63) / 64);
  EXPECT_THROW(cache.scan([](auto, auto, auto) { throw std::runtime_error("stop"); }),
               std::runtime_error);
  EXPECT_THROW(cache.scan([](auto, auto, auto) {}, 0), Error);

  CacheOptions memory_only;
  memory_only.dim = 16;
  EmbeddingCache memory(memory_only);
  EXPECT_FALSE(memory.estimated_durable_count().has_value());
  try {
    memory.scan([](auto, auto, auto) {});
    ADD_FAILURE() << "scan of a memory-only cache must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Unsupported);
  }
}

}  // namespace
}  // namespace hetcache::test
