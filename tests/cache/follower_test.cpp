// Open modes beside a writer: a Follower sees what a writer in another process committed before
// its catch-up (on demand and on its own after catch_up_interval), never serves a value the writer
// replaced or removed, refuses writes, and leaves nothing behind; database_has_writer tells a
// reader which mode fits.
#include <gtest/gtest.h>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "cache/cache_test_util.hpp"
#include "cache/writer_process.hpp"

namespace hetcache::test {
namespace {

constexpr std::size_t kDim = 64;

CacheOptions follower_of(const std::string& path, std::chrono::milliseconds interval) {
  CacheOptions options;
  options.dim = kDim;
  options.max_bytes = std::size_t{8} << 20;
  options.durable = RocksDbOptions{};
  options.durable->path = path;
  options.durable->mode = OpenMode::Follower;
  options.durable->catch_up_interval = interval;
  return options;
}

CacheOptions writer_of(const std::string& path) {
  CacheOptions options = follower_of(path, {});
  options.durable->mode = OpenMode::ReadWrite;
  return options;
}

std::vector<std::string> batch_keys(long batch) {
  return make_keys("b" + std::to_string(batch) + "-", 16);
}

// Every key of batches [first, last] is found with the value the writer put.
void expect_batches(EmbeddingCache& cache, long first, long last) {
  Matrix out(16, kDim);
  for (long batch = first; batch <= last; ++batch) {
    const auto keys = batch_keys(batch);
    const auto mask = cache.get_batch(keys, out.mutable_view());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      ASSERT_EQ(mask[i], 1) << keys[i] << " (batch " << batch << " of " << last << ") not seen";
      ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], std::uint64_t(batch), kDim)))
          << keys[i];
    }
  }
}

// Reads the writer's lines until it has acknowledged `batch`.
void wait_for_batch(const Writer& writer, long batch) {
  long acknowledged = -1;
  while (acknowledged < batch) {
    ASSERT_EQ(std::fscanf(writer.lines, "%ld", &acknowledged), 1) << "the writer stopped";
  }
}

// The writer process, killed when the test ends however it ends (before its directory goes).
struct RunningWriter {
  Writer process;
  RunningWriter(const std::string& path, long first_batch)
      : process(start_writer(path, kDim, first_batch, "async")) {}
  ~RunningWriter() { stop(); }
  void stop() {
    if (process.pid == 0) return;
    ::kill(process.pid, SIGKILL);
    std::fclose(process.lines);
    int status = 0;
    ::waitpid(process.pid, &status, 0);
    process.pid = 0;
  }
};

// The database exists before the follower opens: the writer's first batches.
void seed_database(const std::string& path) {
  EmbeddingCache writer(writer_of(path));
  const auto keys = batch_keys(0);
  writer.put_batch(keys, matrix_for(keys, 0, kDim).view());
}

TEST(Follower, SeesWhatAWriterProcessCommittedBeforeItsCatchUp) {
  TempDir dir;
  const std::string path = dir.sub("db");
  seed_database(path);
  EXPECT_FALSE(database_has_writer(path));
  RunningWriter running(path, 1);
  const Writer& writer = running.process;
  // Followers opened while the writer starts (it replays its log, writes a new MANIFEST and
  // deletes the old files): each one's catch-ups must still miss nothing. Only catch_up() moves
  // them forward.
  std::vector<std::unique_ptr<EmbeddingCache>> followers;
  for (bool writing = false; followers.size() < 4 || (!writing && followers.size() < 32);) {
    followers.push_back(
        std::make_unique<EmbeddingCache>(follower_of(path, std::chrono::milliseconds::max())));
    pollfd line{::fileno(writer.lines), POLLIN, 0};
    writing = ::poll(&line, 1, 0) == 1;  // its first batch is acknowledged
  }
  wait_for_batch(writer, 50);
  EXPECT_TRUE(database_has_writer(path));
  for (auto& early : followers) {
    early->catch_up();
    expect_batches(*early, 0, 50);
  }
  EmbeddingCache& follower = *followers.back();
  // Through many memtable flushes (the writer's are 1 MiB, ~230 batches): the logs the follower
  // tails are deleted under it, their batches moving into table files. Each catch-up must have
  // every batch acknowledged before it, wherever the batch is by then.
  for (long last = 50, next = 75; next <= 6000; last = next, next += 25) {
    wait_for_batch(writer, next);
    follower.catch_up();
    expect_batches(follower, last + 1, next);
    if (HasFatalFailure()) break;
  }
  EXPECT_EQ(follower.stats().corrupt_reads, 0u);
  running.stop();
  EXPECT_FALSE(database_has_writer(path));
}

// A follower opened before its writer starts: the writer's open writes a new MANIFEST and a new
// log, and the follower's first catch-up must switch to both.
TEST(Follower, OpenedBeforeTheWriterStartsSeesItsBatches) {
  TempDir dir;
  const std::string path = dir.sub("db");
  seed_database(path);
  EmbeddingCache follower(follower_of(path, std::chrono::milliseconds::max()));
  RunningWriter running(path, 1);
  wait_for_batch(running.process, 50);
  EXPECT_TRUE(follower.catch_up());
  expect_batches(follower, 0, 50);
}

TEST(Follower, ReadsCatchUpOnTheirOwnOnceTheIntervalHasPassed) {
  TempDir dir;
  const std::string path = dir.sub("db");
  seed_database(path);
  RunningWriter running(path, 1);
  const Writer& writer = running.process;
  EmbeddingCache follower(follower_of(path, std::chrono::milliseconds(50)));
  for (const long batch : {20L, 400L}) {
    wait_for_batch(writer, batch);
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    expect_batches(follower, batch, batch);  // no catch_up() call: the read made it
  }
}

// A writer in this process stands in for the other process here: only the follower's own view
// matters, and it needs a key it has cached to be replaced.
TEST(Follower, NeverServesAValueItsWriterReplacedOrRemoved) {
  TempDir dir;
  const std::string path = dir.sub("db");
  EmbeddingCache writer(writer_of(path));
  writer.put("k", vector_for("k", 1, kDim));
  writer.put("gone", vector_for("gone", 1, kDim));
  EmbeddingCache follower(follower_of(path, std::chrono::milliseconds::max()));
  ASSERT_TRUE(row_equals(follower.get("k")->data(), vector_for("k", 1, kDim)));
  ASSERT_TRUE(follower.get("gone").has_value());
  EXPECT_EQ(follower.stats().entries, 2u);  // both now in its memory store
  writer.put("k", vector_for("k", 2, kDim));
  writer.remove("gone");
  EXPECT_TRUE(row_equals(follower.get("k")->data(), vector_for("k", 1, kDim)))
      << "changed before any catch-up";
  EXPECT_TRUE(follower.catch_up());
  EXPECT_TRUE(row_equals(follower.get("k")->data(), vector_for("k", 2, kDim)));
  EXPECT_FALSE(follower.get("gone").has_value());
  EXPECT_FALSE(follower.catch_up());  // nothing new
  EXPECT_EQ(follower.stats().entries, 1u);
}

TEST(Follower, RefusesWritesAndLeavesNothingBehind) {
  TempDir dir, tmp;
  const std::string path = dir.sub("db");
  seed_database(path);
  const char* old_tmpdir = std::getenv("TMPDIR");
  const std::string saved = old_tmpdir ? old_tmpdir : "";
  ::setenv("TMPDIR", tmp.path().c_str(), 1);  // the follower's own directory goes here
  {
    EmbeddingCache follower(follower_of(path, std::chrono::milliseconds(0)));
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmp.path()), {}), 1);
    expect_error(ErrorCode::Unsupported, "as a follower",
                 [&] { follower.put("x", vector_for("x", 1, kDim)); });
    expect_error(ErrorCode::Unsupported, "as a follower", [&] { follower.remove("b0-1"); });
    expect_error(ErrorCode::Unsupported, "as a follower", [&] { follower.compact(); });
    EXPECT_TRUE(follower.get("b0-1").has_value());
  }
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmp.path()), {}), 0);
  if (old_tmpdir)
    ::setenv("TMPDIR", saved.c_str(), 1);
  else
    ::unsetenv("TMPDIR");
  expect_error(ErrorCode::StoreUnavailable, "holds no database to open as a follower",
               [&] { EmbeddingCache{follower_of(dir.sub("absent"), {})}; });
  EXPECT_FALSE(std::filesystem::exists(dir.sub("absent")));
  CacheOptions negative = follower_of(path, std::chrono::milliseconds(-1));
  expect_error(ErrorCode::InvalidArgument, "catch_up_interval must be >= 0 ms, got -1",
               [&] { EmbeddingCache{negative}; });
}

TEST(Follower, AWriterInThisProcessCountsAsAWriter) {
  TempDir dir;
  const std::string path = dir.sub("db");
  EXPECT_FALSE(database_has_writer(path));  // no database at all
  {
    EmbeddingCache writer(writer_of(path));
    EXPECT_TRUE(database_has_writer(path));
    EXPECT_TRUE(database_has_writer(path));  // asking twice keeps the lock held
    // The lock is still ours: a second writer is refused.
    expect_error(ErrorCode::StoreUnavailable, "is locked",
                 [&] { EmbeddingCache{writer_of(path)}; });
  }
  EXPECT_FALSE(database_has_writer(path));
}

}  // namespace
}  // namespace hetcache::test
