// Bulk ingest (RocksDbOptions::bulk_ingest_rows): a large ingest_batch goes in as table files --
// every vector intact, none through the write-ahead log, row ids dense in batch order -- an ingest
// leaves the memory store's hot entries alone, a follower sees it after a catch-up, a staging
// directory left by a killed ingest is removed, and a writer killed mid-ingest leaves each batch
// whole or absent, with ids that stay dense. (ingest_batch_test.cpp runs the conflict rules through
// the bulk path too.)
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "cache/cache_test_util.hpp"
#include "cache/writer_process.hpp"
#include "reference.hpp"

namespace hetcache::test {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kDim = 64;

CacheOptions bulk_options(const std::string& path, std::size_t bulk_rows) {
  CacheOptions o;
  o.dim = kDim;
  o.max_bytes = std::size_t{16} << 20;
  o.durable = RocksDbOptions{};
  o.durable->path = path;
  o.durable->bulk_ingest_rows = bulk_rows;
  o.log = [](std::string_view) {};
  return o;
}

std::uintmax_t log_bytes(const std::string& dir) {
  std::uintmax_t bytes = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".log") bytes += e.file_size();
  return bytes;
}

bool has_staging(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().starts_with("hetcache-bulk-")) return true;
  return false;
}

// Keys in no particular order (the files need them sorted; the ids follow the batch).
std::vector<std::string> shuffled_keys(const std::string& prefix, std::size_t n,
                                       std::uint64_t seed) {
  std::vector<std::string> keys = make_keys(prefix, n);
  std::shuffle(keys.begin(), keys.end(), std::mt19937_64(seed));
  return keys;
}

void expect_stored(EmbeddingCache& cache, const std::vector<std::string>& keys,
                   std::uint64_t version) {
  expect_all_stored(cache, keys, version, kDim);
}

TEST(BulkIngest, LargeBatchesGoInAsTableFilesWithIdsInBatchOrder) {
  TempDir dir;
  const std::string db = dir.sub("db");
  const auto first = shuffled_keys("a", 12000, test_seed());
  const auto second = shuffled_keys("b", 12000, test_seed() + 1);
  {
    EmbeddingCache cache(bulk_options(db, 10000));
    cache.put("small", vector_for("small", 1, kDim));  // id 0, through the log
    EXPECT_EQ(cache.ingest_batch(first, matrix_for(first, 1, kDim).view()).written, 12000u);
    EXPECT_EQ(cache.ingest_batch(second, matrix_for(second, 1, kDim).view()).written, 12000u);
    EXPECT_EQ(cache.stats().bulk_ingests, 2u);
    // 24000 vectors of 288 bytes (6.9 MB) went in; the log holds little more than the one put.
    EXPECT_LT(log_bytes(db), std::uintmax_t{64} << 10);
    EXPECT_FALSE(has_staging(db));
    expect_stored(cache, first, 1);
    // Below bulk_ingest_rows: a write batch.
    const auto few = make_keys("c", 100);
    cache.ingest_batch(few, matrix_for(few, 1, kDim).view());
    EXPECT_EQ(cache.stats().bulk_ingests, 2u);
  }
  EmbeddingCache reopened(bulk_options(db, 10000));
  expect_stored(reopened, first, 1);
  expect_stored(reopened, second, 1);
  const auto ids = scanned_ids(reopened);
  ASSERT_EQ(ids.size(), 1u + 24000 + 100);
  EXPECT_EQ(ids.at("small"), 0);
  for (std::size_t i = 0; i < first.size(); ++i) {
    ASSERT_EQ(ids.at(first[i]), std::int64_t(1 + i)) << first[i];
    ASSERT_EQ(ids.at(second[i]), std::int64_t(1 + 12000 + i)) << second[i];
  }
  EXPECT_EQ(ids.at("c0"), 24001);
}

// Either path, a durable cache's ingest goes to the store alone: the hot entries stay in memory,
// an ingested key that memory held is dropped there (and reloads with its new vector).
TEST(BulkIngest, AnIngestLeavesTheMemoryStoresHotEntriesAlone) {
  for (const std::size_t bulk_rows : {std::size_t{0}, std::size_t{1000}}) {
    TempDir dir;
    EmbeddingCache cache(bulk_options(dir.sub("db"), bulk_rows));
    const auto hot = make_keys("hot", 10);
    cache.put_batch(hot, matrix_for(hot, 1, kDim).view());
    auto keys = make_keys("k", 5000);
    keys.push_back(hot[3]);
    cache.ingest_batch(keys, matrix_for(keys, 2, kDim).view(), OnConflict::Overwrite);
    EXPECT_EQ(cache.stats().entries, 9u) << bulk_rows;
    EXPECT_EQ(cache.stats().bulk_ingests, bulk_rows > 0 ? 1u : 0u);
    const auto got = cache.get(hot[3]);
    ASSERT_TRUE(got.has_value());
    EXPECT_TRUE(row_equals(got->data(), vector_for(hot[3], 2, kDim)));
    EXPECT_EQ(cache.stats().durable_hits, 1u);
  }
}

// Reads through mapped table files (RocksDbOptions::mmap_reads, the default) and through pread
// find the same vectors, and a miss is a miss either way.
TEST(BulkIngest, MappedAndCopiedReadsAgree) {
  TempDir dir;
  const std::string db = dir.sub("db");
  const auto keys = shuffled_keys("k", 3000, test_seed());
  {
    EmbeddingCache writer(bulk_options(db, 1000));
    writer.ingest_batch(keys, matrix_for(keys, 1, kDim).view());
  }
  for (const bool mapped : {true, false}) {
    CacheOptions o = bulk_options(db, 1000);
    o.durable->mmap_reads = mapped;
    EmbeddingCache cache(o);
    expect_stored(cache, keys, 1);
    EXPECT_FALSE(cache.contains("absent")) << mapped;
    EXPECT_EQ(cache.stats().durable_hits, keys.size()) << mapped;
  }
}

TEST(BulkIngest, AFollowerSeesABulkIngestAfterItsCatchUp) {
  TempDir dir;
  const std::string db = dir.sub("db");
  EmbeddingCache writer(bulk_options(db, 1000));
  writer.put("first", vector_for("first", 1, kDim));
  CacheOptions follows = bulk_options(db, 1000);
  follows.durable->mode = OpenMode::Follower;
  follows.durable->catch_up_interval = std::chrono::milliseconds::max();
  EmbeddingCache follower(follows);
  const auto keys = shuffled_keys("k", 5000, test_seed());
  writer.ingest_batch(keys, matrix_for(keys, 1, kDim).view());
  EXPECT_FALSE(follower.contains(keys[0]));
  follower.catch_up();
  expect_stored(follower, keys, 1);
  // An overwrite in bulk: the follower's memory store held the old vectors.
  writer.ingest_batch(keys, matrix_for(keys, 2, kDim).view(), OnConflict::Overwrite);
  follower.catch_up();
  expect_stored(follower, keys, 2);
}

TEST(BulkIngest, AStagingDirectoryLeftBehindIsRemovedByTheNextWriter) {
  TempDir dir;
  const std::string db = dir.sub("db");
  { EmbeddingCache cache(bulk_options(db, 1000)); }
  fs::create_directory(db + "/hetcache-bulk-Xy12Ab");
  std::ofstream(db + "/hetcache-bulk-Xy12Ab/vectors-0.sst") << "half a file";
  {
    CacheOptions reads = bulk_options(db, 1000);
    reads.durable->mode = OpenMode::ReadOnly;
    EmbeddingCache reader(reads);  // a reader leaves it: it cannot know the writer is gone
    EXPECT_TRUE(has_staging(db));
  }
  EmbeddingCache writer(bulk_options(db, 1000));
  EXPECT_FALSE(has_staging(db));
}

// Starts the bulk writer at first_batch, SIGKILLs it a random moment after it acknowledged
// kill_after batches, and returns the last batch it acknowledged.
long run_and_kill(const std::string& dir, long first_batch, long kill_after, unsigned delay_us) {
  const Writer writer = start_writer(dir, kDim, first_batch, "bulk");
  long last = first_batch - 1, seen = 0, batch = 0;
  while (fscanf(writer.lines, "%ld", &batch) == 1) {
    last = batch;
    if (++seen == kill_after) {
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      kill(writer.pid, SIGKILL);
    }
  }
  fclose(writer.lines);
  int status = 0;
  waitpid(writer.pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "exited: " << status;
  return last;
}

TEST(BulkIngest, AWriterKilledMidIngestLeavesWholeBatchesAndDenseIds) {
  TempDir dir;
  const std::string db = dir.sub("db");
  std::mt19937_64 rng(test_seed());
  long next = 0;
  for (int round = 0; round < 4; ++round) {
    // A batch takes tens of ms here: the kill lands anywhere in the next one (sorting, building
    // files, ingesting them) or between two.
    const long last = run_and_kill(db, next, 1 + long(rng() % 3), unsigned(rng() % 60000));
    ASSERT_GE(last, next);
    next = last + 1;
  }
  EmbeddingCache cache(bulk_options(db, 1));
  EXPECT_FALSE(has_staging(db));
  for (long batch = 0; batch < next; ++batch)
    expect_stored(cache, make_keys("b" + std::to_string(batch) + "-", kBulkBatch), batch);
  // The batch in flight at the last kill: all of it or none of it.
  const auto in_flight = make_keys("b" + std::to_string(next) + "-", kBulkBatch);
  Matrix out(kBulkBatch, kDim);
  const auto mask = cache.get_batch(in_flight, out.mutable_view());
  const auto present = std::count(mask.begin(), mask.end(), 1);
  EXPECT_TRUE(present == 0 || present == long(kBulkBatch)) << present << " keys of the batch";
  const long batches = next + (present > 0 ? 1 : 0);
  // Each batch's keys hold the ids of its turn, in batch order: none lost, none given twice (a
  // batch killed before its files went in gave out no ids).
  const auto ids = scanned_ids(cache);
  ASSERT_EQ(ids.size(), std::size_t(batches) * kBulkBatch);
  for (long batch = 0; batch < batches; ++batch) {
    const auto keys = make_keys("b" + std::to_string(batch) + "-", kBulkBatch);
    for (std::size_t i = 0; i < keys.size(); ++i)
      ASSERT_EQ(ids.at(keys[i]), std::int64_t(batch * kBulkBatch + i)) << keys[i];
  }
  EXPECT_EQ(cache.stats().corrupt_reads, 0u);
}

}  // namespace
}  // namespace hetcache::test
