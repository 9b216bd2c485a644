// ingest_batch: stored vectors are compared bit for bit before anything is written; absent and
// expired keys are written, identical ones left alone, different ones refused (the whole batch),
// replaced or kept as asked -- in a memory-only cache and over RocksDB (through its write batches
// and as bulk table files), where the outcome survives a reopen.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

#include "cache/cache_test_util.hpp"

namespace hetcache::test {
namespace {

constexpr std::size_t kDim = 24;

struct Store {
  const char* name;
  bool durable;
  std::size_t bulk_rows = 65536;  // RocksDbOptions::bulk_ingest_rows
};

class IngestBatch : public ::testing::TestWithParam<Store> {
 protected:
  TempDir dir;
  CacheOptions options() const {
    CacheOptions o;
    o.dim = kDim;
    o.max_bytes = std::size_t{8} << 20;
    o.allow_non_finite = true;
    if (GetParam().durable) {
      o.durable = RocksDbOptions{};
      o.durable->path = dir.sub("db");
      o.durable->bulk_ingest_rows = GetParam().bulk_rows;
    }
    o.log = [](std::string_view) {};
    return o;
  }
};

// keys k0..k149: k0-k49 stored with these values, k50-k99 stored with other values, k100-k149 new.
struct Batch {
  std::vector<std::string> keys = make_keys("k", 150);
  Matrix values = matrix_for(keys, 2, kDim);
};

void store_first_hundred(EmbeddingCache& cache, const Batch& b) {
  const std::vector<std::string> same(b.keys.begin(), b.keys.begin() + 50);
  const std::vector<std::string> other(b.keys.begin() + 50, b.keys.begin() + 100);
  cache.put_batch(same, matrix_for(same, 2, kDim).view());
  cache.put_batch(other, matrix_for(other, 1, kDim).view());
}

void expect_values(EmbeddingCache& cache, const Batch& b, std::size_t first, std::size_t last,
                   std::uint64_t version) {
  for (std::size_t i = first; i < last; ++i) {
    const auto got = cache.get(b.keys[i]);
    ASSERT_TRUE(got.has_value()) << b.keys[i];
    EXPECT_TRUE(row_equals(got->data(), vector_for(b.keys[i], version, kDim))) << b.keys[i];
  }
}

TEST_P(IngestBatch, ADifferentVectorRefusesTheWholeBatchByDefault) {
  EmbeddingCache cache(options());
  const Batch b;
  store_first_hundred(cache, b);
  expect_error(ErrorCode::Conflict,
               "50 of 150 keys already hold a different vector (the first: 'k50'); nothing of "
               "this batch was written",
               [&] { cache.ingest_batch(b.keys, b.values.view()); });
  expect_values(cache, b, 50, 100, 1);
  for (std::size_t i = 100; i < 150; ++i) EXPECT_FALSE(cache.contains(b.keys[i])) << i;
}

TEST_P(IngestBatch, OverwriteReplacesAndSkipKeepsAndBothCountEveryKey) {
  const Batch b;
  {
    EmbeddingCache cache(options());
    store_first_hundred(cache, b);
    const IngestCounts skip = cache.ingest_batch(b.keys, b.values.view(), OnConflict::Skip);
    EXPECT_EQ(skip.written, 50u);
    EXPECT_EQ(skip.unchanged, 50u);
    EXPECT_EQ(skip.overwritten, 0u);
    EXPECT_EQ(skip.skipped, 50u);
    expect_values(cache, b, 50, 100, 1);
    expect_values(cache, b, 100, 150, 2);
    const IngestCounts over = cache.ingest_batch(b.keys, b.values.view(), OnConflict::Overwrite);
    EXPECT_EQ(over.written, 0u);
    EXPECT_EQ(over.unchanged, 100u);
    EXPECT_EQ(over.overwritten, 50u);
    EXPECT_EQ(over.skipped, 0u);
    expect_values(cache, b, 0, 150, 2);  // the memory store held k50-k99's old vectors
    // Everything is now this batch: running it again writes nothing, whatever the rule.
    const IngestCounts again = cache.ingest_batch(b.keys, b.values.view());
    EXPECT_EQ(again.unchanged, 150u);
    EXPECT_EQ(again.written + again.overwritten + again.skipped, 0u);
    EXPECT_EQ(cache.stats().ingest_batch_calls, 3u);
    EXPECT_EQ(cache.stats().bulk_ingests, GetParam().bulk_rows == 1 ? 2u : 0u);
  }
  if (!GetParam().durable) return;
  EmbeddingCache reopened(options());
  expect_values(reopened, b, 0, 150, 2);
}

// Bits decide: -0 differs from +0, a NaN equals the same NaN, and an expired key is absent.
TEST_P(IngestBatch, BitsDecideAndExpiredKeysAreAbsent) {
  EmbeddingCache cache(options());
  std::vector<float> zero(kDim, 0.0f), nan(kDim, 1.0f);
  nan[5] = std::numeric_limits<float>::quiet_NaN();
  cache.put("zero", zero);
  cache.put("nan", nan);
  cache.put("old", zero, std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  std::vector<float> negative_zero = zero;
  negative_zero[kDim - 1] = -0.0f;
  // One key per call, so a wrong answer for one cannot hide behind a wrong answer for another.
  const auto ingest_one = [&](const std::string& key, const std::vector<float>& value) {
    const std::vector<std::string> keys = {key};
    return cache.ingest_batch(keys, MatrixView(value.data(), 1, kDim), OnConflict::Skip);
  };
  EXPECT_EQ(ingest_one("zero", negative_zero).skipped, 1u);  // -0 is another vector
  EXPECT_EQ(ingest_one("zero", zero).unchanged, 1u);
  EXPECT_EQ(ingest_one("nan", nan).unchanged, 1u);  // the same bits
  std::vector<float> other_nan = nan;
  other_nan[5] = -other_nan[5];  // a NaN with its sign bit set
  EXPECT_EQ(ingest_one("nan", other_nan).skipped, 1u);
  EXPECT_EQ(ingest_one("old", zero).written, 1u);  // expired, so absent
  EXPECT_TRUE(cache.contains("old"));
}

TEST_P(IngestBatch, RepeatedKeysAreRefusedBeforeAnythingIsRead) {
  EmbeddingCache cache(options());
  const std::vector<std::string> keys = {"a", "b", "c", "b"};
  const Matrix values = matrix_for(keys, 1, kDim);
  expect_error(ErrorCode::InvalidArgument, "keys[3] 'b' repeats keys[1]",
               [&] { cache.ingest_batch(keys, values.view(), OnConflict::Overwrite); });
  EXPECT_FALSE(cache.contains("a"));
}

INSTANTIATE_TEST_SUITE_P(Stores, IngestBatch,
                         ::testing::Values(Store{"memory", false}, Store{"rocksdb", true},
                                           // every write as table files (put_bulk)
                                           Store{"rocksdb_bulk", true, 1}),
                         [](const auto& store) { return std::string(store.param.name); });

}  // namespace
}  // namespace hetcache::test
