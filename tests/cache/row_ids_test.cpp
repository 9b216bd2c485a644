// Row ids of a RocksDB database: dense from 0 in the order keys first arrive, one per key however
// often it is written, removed or cleared, the same after reopening and from two writing threads;
// scan, search and the whole-database search carry them; a database written before ids existed
// gets them, in key order, at its next read-write open.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <thread>

#include "cache/cache_test_util.hpp"
#include "support/raw_rocksdb.hpp"

namespace hetcache::test {
namespace {

using testing::RawDb;

constexpr std::size_t kDim = 16;

CacheOptions rocks(const std::string& path) {
  CacheOptions o;
  o.dim = kDim;
  o.max_bytes = std::size_t{8} << 20;
  o.durable = RocksDbOptions{};
  o.durable->path = path;
  o.log = [](std::string_view) {};
  return o;
}

TEST(RowIds, DenseInArrivalOrderAndKeptThroughRewritesRemovalAndClear) {
  TempDir dir;
  {
    EmbeddingCache cache(rocks(dir.sub("db")));
    // "b" before "a": ids follow arrival, not key order; "b" twice in one batch gets one id.
    const std::vector<std::string> first = {"b", "a", "b"};
    cache.put_batch(first, matrix_for(first, 1, kDim).view());
    cache.put("c", vector_for("c", 1, kDim));
    cache.put("a", vector_for("a", 2, kDim));  // rewritten: keeps its id
    EXPECT_EQ(scanned_ids(cache),
              (std::map<std::string, std::int64_t>{{"a", 1}, {"b", 0}, {"c", 2}}));
    ASSERT_TRUE(cache.remove("b"));
    cache.put("d", vector_for("d", 1, kDim));
    cache.put("b", vector_for("b", 3, kDim));  // back: its old id
    cache.clear();
    cache.put("c", vector_for("c", 2, kDim));  // after clear: still its id
    cache.put("e", vector_for("e", 1, kDim));
    EXPECT_EQ(scanned_ids(cache), (std::map<std::string, std::int64_t>{{"c", 2}, {"e", 4}}));
  }
  EmbeddingCache reopened(rocks(dir.sub("db")));
  reopened.put("f", vector_for("f", 1, kDim));
  EXPECT_EQ(scanned_ids(reopened),
            (std::map<std::string, std::int64_t>{{"c", 2}, {"e", 4}, {"f", 5}}));
}

TEST(RowIds, TwoWritingThreadsNeverShareAnIdOrLeaveAHole) {
  TempDir dir;
  EmbeddingCache cache(rocks(dir.sub("db")));
  // One key per put: two puts mostly hold different stripes of the cache, so only the store keeps
  // their id assignments apart.
  constexpr std::size_t kPuts = 3000;
  const auto writer = [&](const std::string& prefix) {
    for (const auto& key : make_keys(prefix, kPuts)) cache.put(key, vector_for(key, 1, kDim));
  };
  std::thread one(writer, "x"), two(writer, "y");
  one.join();
  two.join();
  const auto ids = scanned_ids(cache);
  ASSERT_EQ(ids.size(), 2 * kPuts);
  std::vector<std::int64_t> all;
  for (const auto& [key, id] : ids) all.push_back(id);
  std::sort(all.begin(), all.end());
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], std::int64_t(i));
}

TEST(RowIds, SearchAndTheWholeDatabaseSearchCarryThem) {
  TempDir dir;
  EmbeddingCache cache(rocks(dir.sub("db")));
  const auto keys = make_keys("k", 300);
  cache.put_batch(keys, matrix_for(keys, 1, kDim).view());
  const auto queries = matrix_for({"k7", "k250"}, 1, kDim);  // each finds itself first
  const auto hits = cache.search(queries.view(), 5);
  Scheduler scheduler;
  const auto database = scheduler.search_database(cache, queries.view(), 5);
  for (std::size_t q = 0; q < 2; ++q) {
    ASSERT_EQ(hits[q].size(), 5u);
    ASSERT_EQ(database.hits[q].size(), 5u);
    for (std::size_t j = 0; j < 5; ++j) {
      const std::int64_t expected = std::stoll(hits[q][j].key.substr(1));  // k<i> arrived i-th
      EXPECT_EQ(hits[q][j].id, expected) << hits[q][j].key;
      EXPECT_EQ(database.hits[q][j].key, hits[q][j].key);
      EXPECT_EQ(database.hits[q][j].id, expected) << database.hits[q][j].key;
    }
  }
  CacheOptions memory_only;
  memory_only.dim = kDim;
  EmbeddingCache memory(memory_only);
  memory.put_batch(keys, matrix_for(keys, 1, kDim).view());
  EXPECT_EQ(memory.search(queries.view(), 1)[0][0].id, -1);
}

// The metadata as a database written before ids existed left it: no "id/..." entries, no counter.
void drop_ids(const std::string& path) {
  RawDb raw(path);
  raw.remove_meta_range("id/", "id0");
  raw.remove_meta("next_id");
}

TEST(RowIds, ADatabaseWithoutIdsGetsThemInKeyOrderWhenOpenedForWriting) {
  TempDir dir;
  const std::string path = dir.sub("db");
  {
    EmbeddingCache cache(rocks(path));
    const std::vector<std::string> keys = {"m", "z", "a"};
    cache.put_batch(keys, matrix_for(keys, 1, kDim).view());
  }
  drop_ids(path);
  {
    CacheOptions read_only = rocks(path);
    read_only.durable->mode = OpenMode::ReadOnly;
    EmbeddingCache reader(read_only);  // writes nothing: the ids are unknown
    EXPECT_EQ(scanned_ids(reader),
              (std::map<std::string, std::int64_t>{{"a", -1}, {"m", -1}, {"z", -1}}));
  }
  EmbeddingCache cache(rocks(path));
  cache.put("b", vector_for("b", 1, kDim));
  EXPECT_EQ(scanned_ids(cache),
            (std::map<std::string, std::int64_t>{{"a", 0}, {"b", 3}, {"m", 1}, {"z", 2}}));
}

}  // namespace
}  // namespace hetcache::test
