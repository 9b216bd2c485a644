// Collections: one database holds several, each with its own dimension, keys and row ids; they are
// listed with their dimensions, a wrong dimension or a missing collection is an error naming both
// sides, names are checked, and repair keeps every collection.
#include <gtest/gtest.h>

#include <hetcache/repair.hpp>

#include <filesystem>
#include <map>

#include "cache/cache_test_util.hpp"

namespace hetcache::test {
namespace {

CacheOptions in(const std::string& path, const std::string& collection, std::size_t dim,
                OpenMode mode = OpenMode::ReadWrite) {
  CacheOptions o;
  o.dim = dim;
  o.max_bytes = std::size_t{8} << 20;
  o.durable = RocksDbOptions{};
  o.durable->path = path;
  o.durable->collection = collection;
  o.durable->mode = mode;
  o.log = [](std::string_view) {};
  return o;
}

TEST(Collections, EachHasItsOwnDimensionKeysAndRowIds) {
  TempDir dir;
  const std::string path = dir.sub("db");
  {
    // Two models' caches over one directory, both writing at once in this process.
    EmbeddingCache text(in(path, "text", 16));
    EmbeddingCache images(in(path, "images", 48));
    const std::vector<std::string> keys = {"shared", "t1"};
    text.put_batch(keys, matrix_for(keys, 1, 16).view());
    images.put("shared", vector_for("shared", 2, 48));
    EXPECT_TRUE(row_equals(text.get("shared")->data(), vector_for("shared", 1, 16)));
    EXPECT_TRUE(row_equals(images.get("shared")->data(), vector_for("shared", 2, 48)));
    EXPECT_FALSE(images.contains("t1"));
    EXPECT_EQ(scanned_ids(text), (std::map<std::string, std::int64_t>{{"shared", 0}, {"t1", 1}}));
    EXPECT_EQ(scanned_ids(images), (std::map<std::string, std::int64_t>{{"shared", 0}}));
    // A second writer of a collection already open here is refused; of another, it is not.
    expect_error(ErrorCode::StoreUnavailable, "has its collection 'text' open for writing",
                 [&] { EmbeddingCache{in(path, "text", 16)}; });
    EmbeddingCache third(in(path, "audio", 8));
    EXPECT_TRUE(database_has_writer(path));
  }
  const auto listed = database_collections(path);
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0].name, "audio");
  EXPECT_EQ(listed[0].dim, 8u);
  EXPECT_EQ(listed[1].name, "images");
  EXPECT_EQ(listed[1].dim, 48u);
  EXPECT_EQ(listed[2].name, "text");
  EXPECT_EQ(listed[2].dim, 16u);
  EXPECT_EQ(stored_dimension(path, "images"), 48u);
  EXPECT_FALSE(stored_dimension(path).has_value());  // no "default" collection here
  // Reopened, read-only and as a follower, each collection is as it was.
  for (const OpenMode mode : {OpenMode::ReadWrite, OpenMode::ReadOnly, OpenMode::Follower}) {
    EmbeddingCache images(in(path, "images", 48, mode));
    EXPECT_TRUE(row_equals(images.get("shared")->data(), vector_for("shared", 2, 48)));
  }
  expect_error(ErrorCode::DimensionMismatch,
               "the collection 'images' of the database '" + path +
                   "' holds dim 48; this cache "
                   "has dim 16",
               [&] { EmbeddingCache{in(path, "images", 16)}; });
  for (const OpenMode mode : {OpenMode::ReadOnly, OpenMode::Follower}) {
    expect_error(ErrorCode::InvalidArgument,
                 "holds no collection 'video' (it holds: audio, images, text)",
                 [&] { EmbeddingCache{in(path, "video", 16, mode)}; });
  }
}

TEST(Collections, NamesAreChecked) {
  TempDir dir;
  for (const std::string& bad :
       std::vector<std::string>{"", "a/b", "with space", std::string(65, 'x'), "x\n"}) {
    expect_error(ErrorCode::InvalidArgument, "a collection name is 1 to 64 letters",
                 [&] { EmbeddingCache{in(dir.sub("db"), bad, 8)}; });
  }
  EXPECT_FALSE(std::filesystem::exists(dir.sub("db")));
  EmbeddingCache fine(in(dir.sub("db"), std::string(64, 'x'), 8));
  (void)fine;
}

// The default collection is the layout of databases made before collections: another collection
// added later leaves it as it was, and repair keeps every collection.
TEST(Collections, RepairKeepsEveryCollection) {
  TempDir dir;
  const std::string path = dir.sub("db");
  const auto a = make_keys("a", 300), b = make_keys("b", 200);
  {
    EmbeddingCache first(in(path, "default", 16));
    first.put_batch(a, matrix_for(a, 1, 16).view());
  }
  {
    EmbeddingCache second(in(path, "second", 32));
    second.put_batch(b, matrix_for(b, 1, 32).view());
  }
  const RepairReport report = repair_database(path);
  EXPECT_EQ(report.vectors_before, 500u);
  EXPECT_EQ(report.vectors_after, 500u);
  EmbeddingCache first(in(path, "default", 16)), second(in(path, "second", 32));
  EXPECT_EQ(first.scan([](auto, auto, auto) {}).visited, 300u);
  EXPECT_EQ(second.scan([](auto, auto, auto) {}).visited, 200u);
  EXPECT_TRUE(row_equals(second.get("b7")->data(), vector_for("b7", 1, 32)));
  EXPECT_EQ(scanned_ids(second)["b7"], 7);
}

}  // namespace
}  // namespace hetcache::test
