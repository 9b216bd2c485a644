// A durable store that writes its values as f16 / bf16 / int8 (CacheOptions::durable_storage):
// fewer bytes on disk, every read -- memory hit, durable read after a reopen, a cache that writes
// another type -- returning the value rounded to the type, ingest_batch seeing its own rounded
// values as unchanged, and the options it refuses.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>
#include <filesystem>
#include <string>
#include <vector>

#include "cache/cache_test_util.hpp"
#include "support/raw_rocksdb.hpp"

namespace hetcache::test {
namespace {

using testing::RawDb;

constexpr StorageType kCompactTypes[] = {StorageType::F16, StorageType::Bf16, StorageType::I8};

CacheOptions rocksdb_options(const std::string& path, std::size_t dim, StorageType durable) {
  CacheOptions options;
  options.dim = dim;
  RocksDbOptions rocksdb;
  rocksdb.path = path;
  options.durable = rocksdb;
  options.durable_storage = durable;
  return options;
}

std::uintmax_t directory_bytes(const std::string& dir) {
  std::uintmax_t bytes = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) bytes += e.file_size();
  return bytes;
}

// Every row of `keys` reads back, from `cache`, as row i of `want` (bit for bit).
void expect_reads(EmbeddingCache& cache, const std::vector<std::string>& keys, const Matrix& want,
                  const std::string& what) {
  Matrix out(keys.size(), want.dim());
  const auto found = cache.get_batch(keys, out.mutable_view());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(found[i]) << what << ": " << keys[i];
    const std::vector<float> expected(want.row(i), want.row(i) + want.dim());
    ASSERT_TRUE(row_equals(out.row(i), expected)) << what << ": " << keys[i];
  }
}

TEST(CompactDurable, ValuesTakeTheTypesBytesOnDisk) {
  constexpr std::size_t kDim = 256, kRows = 4000;
  const auto keys = make_keys("d", kRows);
  const Matrix rows = matrix_for(keys, 1, kDim);
  std::uintmax_t bytes[4] = {};
  for (const StorageType type :
       {StorageType::F32, StorageType::F16, StorageType::Bf16, StorageType::I8}) {
    TempDir dir;
    {
      EmbeddingCache cache(rocksdb_options(dir.path(), kDim, type));
      cache.put_batch(keys, rows.view());
      cache.compact();  // the values into table files
    }
    bytes[static_cast<int>(type)] = directory_bytes(dir.path());
  }
  // Per value: 32 header bytes + the key + the payload (f32 1024, f16 / bf16 512, i8 256).
  const auto ratio = [&](StorageType t) {
    return static_cast<double>(bytes[static_cast<int>(t)]) / static_cast<double>(bytes[0]);
  };
  EXPECT_LT(ratio(StorageType::F16), 0.6) << bytes[1] << " vs f32 " << bytes[0];
  EXPECT_LT(ratio(StorageType::Bf16), 0.6) << bytes[2] << " vs f32 " << bytes[0];
  EXPECT_LT(ratio(StorageType::I8), 0.35) << bytes[3] << " vs f32 " << bytes[0];
}

// A put reads back rounded to the durable type from the memory store, and after a reopen from
// the durable store -- also for a cache that writes another type (values describe themselves).
TEST(CompactDurable, EveryReadReturnsTheRoundedValue) {
  constexpr std::size_t kDim = 37;
  const auto keys = make_keys("r", 300);
  const Matrix rows = matrix_for(keys, 2, kDim);
  SimilarityEngine engine;
  for (const StorageType type : kCompactTypes) {
    const CompactSet stored = engine.compact_set(rows.view(), type, false);
    Matrix rounded(rows.rows(), kDim);
    for (std::size_t i = 0; i < rows.rows(); ++i) {
      const std::vector<float> r = stored.decoded_row(i);
      std::copy(r.begin(), r.end(), rounded.row(i));
    }
    TempDir dir;
    {
      EmbeddingCache cache(rocksdb_options(dir.path(), kDim, type));
      cache.put_batch(keys, rows.view());
      expect_reads(cache, keys, rounded, "memory store, " + std::string(to_string(type)));
      EXPECT_EQ(cache.stats().memory_hits, keys.size());
    }
    const auto more = make_keys("f", 20);
    const Matrix exact = matrix_for(more, 3, kDim);
    {
      EmbeddingCache reopened(rocksdb_options(dir.path(), kDim, StorageType::F32));
      expect_reads(reopened, keys, rounded, "durable store, " + std::string(to_string(type)));
      EXPECT_EQ(reopened.stats().durable_hits, keys.size());
      reopened.put_batch(more, exact.view());  // exact values beside the rounded ones
    }
    EmbeddingCache third(rocksdb_options(dir.path(), kDim, type));
    expect_reads(third, more, exact,
                 "f32 values read by a " + std::string(to_string(type)) + " cache");
  }
}

// ingest_batch compares the stored value with the new vector as the store keeps it: a re-run of
// the same input is all unchanged (not a conflict), for a compact durable store and for a
// memory-only cache with a compact memory store.
TEST(CompactDurable, IngestSeesItsOwnRoundedValuesAsUnchanged) {
  constexpr std::size_t kDim = 48;
  const auto keys = make_keys("i", 500);
  const Matrix rows = matrix_for(keys, 4, kDim);
  const Matrix changed = matrix_for(keys, 5, kDim);
  for (const StorageType type : kCompactTypes) {
    TempDir dir;
    CacheOptions durable = rocksdb_options(dir.path(), kDim, type);
    CacheOptions memory_only;
    memory_only.dim = kDim;
    memory_only.memory_storage = type;
    memory_only.search_mode = ScoreMode::Fast;
    for (const CacheOptions& options : {durable, memory_only}) {
      const std::string what =
          std::string(to_string(type)) + (options.durable ? " durable" : " memory");
      EmbeddingCache cache(options);
      EXPECT_EQ(cache.ingest_batch(keys, rows.view()).written, keys.size()) << what;
      const IngestCounts again = cache.ingest_batch(keys, rows.view(), OnConflict::Error);
      EXPECT_EQ(again.unchanged, keys.size()) << what;
      EXPECT_EQ(again.written + again.overwritten, 0u) << what;
      // A different vector is still a conflict.
      expect_error(ErrorCode::Conflict, "already hold a different vector",
                   [&] { cache.ingest_batch(keys, changed.view(), OnConflict::Error); });
    }
  }
}

// Repair recovers a compact collection's dimension from its values' headers when the metadata is
// gone (the header states the dimension; the length follows from the dtype).
TEST(CompactDurable, RepairRecoversTheDimensionFromCompactValues) {
  constexpr std::size_t kDim = 40;
  TempDir dir;
  const std::string path = dir.sub("db");
  const auto keys = make_keys("p", 200);
  const Matrix rows = matrix_for(keys, 8, kDim);
  Matrix rounded(keys.size(), kDim);
  {
    EmbeddingCache cache(rocksdb_options(path, kDim, StorageType::I8));
    cache.put_batch(keys, rows.view());
    cache.get_batch(keys, rounded.mutable_view());
  }
  RawDb(path).remove_meta("dim");
  const RepairReport r = repair_database(path);
  EXPECT_EQ(r.vectors_after, keys.size());
  EmbeddingCache reopened(rocksdb_options(path, kDim, StorageType::F32));
  expect_reads(reopened, keys, rounded, "after repair");
}

TEST(CompactDurable, RefusesWhatItCannotDo) {
  expect_error(ErrorCode::InvalidArgument, "durable_storage is bf16", [] {
    CacheOptions options;
    options.dim = 8;
    options.durable_storage = StorageType::Bf16;
    EmbeddingCache cache(options);
  });
  TempDir dir;
  CacheOptions options = rocksdb_options(dir.path(), 8, StorageType::I8);
  options.memory_storage = StorageType::Bf16;
  expect_error(ErrorCode::InvalidArgument, "durable_storage is i8",
               [&] { EmbeddingCache cache(options); });
  // Fast search needs no f32 values: both stores compact.
  options.search_mode = ScoreMode::Fast;
  EmbeddingCache both(options);
  const std::vector<float> v(8, 0.25f);
  both.put("a", v);
  EXPECT_EQ(both.get("a"), v);  // 0.25 is exact in every type
}

}  // namespace
}  // namespace hetcache::test
