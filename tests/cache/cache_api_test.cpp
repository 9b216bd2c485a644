// The cache's public surface that other tests reach only through the command, or not at all:
// stats fields, check_put_batch, RocksDbOptions (background_jobs, block cache, compression,
// mode ReadOnly), stored_dimension's three answers, and repair_database's report field by field.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cache/cache_test_util.hpp"
#include "support/raw_rocksdb.hpp"

namespace hetcache::test {
namespace {

using testing::RawDb;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

CacheOptions rocks(const std::string& path, std::size_t dim = 16) {
  CacheOptions options;
  options.dim = dim;
  options.max_bytes = std::size_t{8} << 20;
  RocksDbOptions r;
  r.path = path;
  options.durable = r;
  options.log = [](std::string_view) {};
  return options;
}

TEST(CacheApi, StatsCountCapacityExpiryAndAsyncPuts) {
  CacheOptions options;
  options.dim = 8;
  options.max_bytes = std::size_t{4} << 20;
  EmbeddingCache cache(options);
  EXPECT_EQ(cache.dim(), 8u);
  EXPECT_FALSE(cache.has_durable_store());
  const CacheStats empty = cache.stats();
  EXPECT_GT(empty.capacity_bytes, 0u);
  EXPECT_LE(empty.capacity_bytes, options.max_bytes);
  const auto keys = make_keys("t", 10);
  cache.put_batch(keys, matrix_for(keys, 1, 8).view(), 50ms);
  const auto later = make_keys("a", 6);
  const Matrix values = matrix_for(later, 1, 8);
  cache.put_batch_async(later, values.view()).get();
  std::this_thread::sleep_for(80ms);
  EXPECT_EQ(cache.cleanup_expired(), 10u);
  const CacheStats s = cache.stats();
  EXPECT_EQ(s.expired_removed, 10u);
  EXPECT_EQ(s.put_batch_async_calls, 1u);
  EXPECT_EQ(s.entries, 6u);
  EXPECT_LE(s.bytes, s.capacity_bytes);
}

TEST(CacheApi, CheckPutBatchThrowsWhatPutBatchWouldAndStoresNothing) {
  CacheOptions options;
  options.dim = 4;
  EmbeddingCache cache(options);
  const std::vector<std::string> keys = {"a", "b"};
  Matrix wide(2, 5);
  expect_error(ErrorCode::DimensionMismatch, "", [&] { cache.check_put_batch(keys, wide.view()); });
  const std::vector<std::string> empty_key = {"a", ""};
  const Matrix ok = matrix_for(keys, 1, 4);
  expect_error(ErrorCode::InvalidArgument, "empty",
               [&] { cache.check_put_batch(empty_key, ok.view()); });
  EXPECT_NO_THROW(cache.check_put_batch(keys, ok.view()));
  EXPECT_FALSE(cache.contains("a"));  // checking stores nothing
}

TEST(CacheApi, RocksDbOptionsAreHonouredOrRefused) {
  TempDir dir;
  CacheOptions options = rocks(dir.sub("bad"));
  options.durable->background_jobs = 0;
  expect_error(ErrorCode::InvalidArgument, "RocksDbOptions.background_jobs must be >= 1, got 0",
               [&] { EmbeddingCache{options}; });
  // A tiny block cache and compression: values round-trip exactly across a reopen and a compaction.
  options = rocks(dir.sub("lz4"));
  options.durable->block_cache_bytes = 64 << 10;
  options.durable->compress = true;
  const auto keys = make_keys("c", 2000);
  {
    EmbeddingCache cache(options);
    cache.put_batch(keys, matrix_for(keys, 3, 16).view());
    cache.compact();
  }
  EmbeddingCache reopened(options);
  Matrix out(keys.size(), 16);
  const auto mask = reopened.get_batch(keys, out.mutable_view());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(mask[i], 1);
    ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], 3, 16)));
  }
}

TEST(CacheApi, ReadOnlyOpensWriteNothingAndRefuseWrites) {
  TempDir dir;
  const std::string path = dir.sub("db");
  const auto keys = make_keys("r", 100);
  {
    EmbeddingCache writer(rocks(path));
    writer.put_batch(keys, matrix_for(keys, 1, 16).view());
  }
  CacheOptions options = rocks(path);
  options.durable->mode = OpenMode::ReadOnly;
  EmbeddingCache writer(rocks(path));  // holds the lock: a reader opens beside it anyway
  EmbeddingCache reader(options);
  EXPECT_TRUE(reader.get("r7").has_value());
  EXPECT_EQ(reader.scan([](auto, auto, auto) {}).visited, 100u);
  expect_error(ErrorCode::Unsupported, "is open read-only",
               [&] { reader.put("x", vector_for("x", 1, 16)); });
  expect_error(ErrorCode::Unsupported, "is open read-only", [&] { reader.remove("r1"); });
  expect_error(ErrorCode::Unsupported, "is open read-only", [&] { reader.compact(); });
  EXPECT_TRUE(writer.get("r1").has_value());  // the refused remove removed nothing
  CacheOptions nothing = rocks(dir.sub("absent"));
  nothing.durable->mode = OpenMode::ReadOnly;
  expect_error(ErrorCode::StoreUnavailable, "holds no database to open read-only",
               [&] { EmbeddingCache{nothing}; });
  EXPECT_FALSE(fs::exists(dir.sub("absent")));  // not created
}

// A database of n vectors, compacted into one table.
void make_database(const std::string& path, std::size_t n) {
  EmbeddingCache cache(rocks(path));
  const auto keys = make_keys("k", n);
  cache.put_batch(keys, matrix_for(keys, 1, 16).view());
  cache.compact();
}

TEST(CacheApi, StoredDimensionSaysNoneTheDimensionOrCorrupt) {
  TempDir dir;
  EXPECT_FALSE(stored_dimension(dir.sub("nothing")).has_value());
  make_database(dir.sub("db"), 20000);
  EXPECT_EQ(stored_dimension(dir.sub("db")), 16u);
  const std::string table = biggest_table(dir.sub("db"));
  flip_byte(table, fs::file_size(table) - 3000);  // inside the index block, read at open
  expect_error(ErrorCode::Corruption, "is corrupt", [&] { stored_dimension(dir.sub("db")); });
}

TEST(CacheApi, RepairReportsEachCountItPrints) {
  TempDir dir;
  const std::string path = dir.sub("db");
  make_database(path, 30000);
  // A value that fails its own checksum, in a block that is fine: written under our key space.
  RawDb(path).put("zz-bad", std::string(96, 'x'));
  RepairReport healthy = repair_database(path);
  EXPECT_TRUE(healthy.opened_before);
  EXPECT_EQ(healthy.vectors_before, 30000u);
  EXPECT_NE(healthy.before.find("1 failing their checksum"), std::string::npos) << healthy.before;
  EXPECT_EQ(healthy.tables_set_aside, 0u);
  EXPECT_EQ(healthy.salvaged, 0u);
  EXPECT_EQ(healthy.unrecoverable, 0u);
  EXPECT_EQ(healthy.corrupt_removed, 1u);
  EXPECT_EQ(healthy.vectors_after, 30000u);
  EXPECT_EQ(healthy.expired_after, 0u);
  EmbeddingCache(rocks(path)).compact();
  const std::string table = biggest_table(path);
  flip_byte(table, fs::file_size(table) / 2);
  const RepairReport r = repair_database(path);
  EXPECT_TRUE(r.opened_before);
  EXPECT_LT(r.vectors_before, 30000u);  // reading stopped at the damaged block
  EXPECT_EQ(r.tables_set_aside, 1u);
  EXPECT_EQ(r.salvaged, 29999u);
  EXPECT_EQ(r.unrecoverable, 1u);
  EXPECT_EQ(r.corrupt_removed, 0u);
  EXPECT_EQ(r.vectors_after, 29999u);
  ASSERT_FALSE(r.notes.empty());
  expect_error(ErrorCode::InvalidArgument, "holds no database to repair",
               [&] { repair_database(dir.sub("empty")); });
}

}  // namespace
}  // namespace hetcache::test
