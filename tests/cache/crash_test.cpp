// Crash test: a writer process is SIGKILLed mid-ingest; after reopening, every batch it had
// acknowledged is present and intact, the batch in flight is all-or-nothing, nothing reads corrupt.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <random>
#include <thread>

#include "cache/cache_test_util.hpp"
#include "cache/writer_process.hpp"
#include "reference.hpp"

namespace hetcache::test {
namespace {

constexpr std::size_t kDim = 64;

// Starts the writer, lets it acknowledge `kill_after` batches, SIGKILLs it, and returns the last
// batch number it acknowledged (every line it printed before dying).
long run_and_kill(const std::string& dir, long first_batch, long kill_after,
                  const char* durability) {
  const Writer writer = start_writer(dir, kDim, first_batch, durability);
  const pid_t pid = writer.pid;
  FILE* lines = writer.lines;
  long last = first_batch - 1, seen = 0, batch = 0;
  while (fscanf(lines, "%ld", &batch) == 1) {
    last = batch;
    if (++seen == kill_after) kill(pid, SIGKILL);
  }
  fclose(lines);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "writer exited on its own: " << status;
  return last;
}

// ranges: [first, last] batch numbers each writer acknowledged.
void check_after_crash(const std::string& dir, const std::vector<std::pair<long, long>>& ranges) {
  CacheOptions options;
  options.dim = kDim;
  options.durable = RocksDbOptions{};
  options.durable->path = dir;
  EmbeddingCache cache(options);
  Matrix out(16, kDim);
  for (const auto& [first, last] : ranges) {
    for (long batch = first; batch <= last; ++batch) {
      const auto keys = make_keys("b" + std::to_string(batch) + "-", 16);
      const auto mask = cache.get_batch(keys, out.mutable_view());
      for (std::size_t i = 0; i < keys.size(); ++i) {
        ASSERT_EQ(mask[i], 1) << "acknowledged " << keys[i] << " lost";
        ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], batch, kDim))) << keys[i];
      }
    }
  }
  const long last_acknowledged = ranges.back().second;
  // The batch that was being written when the kill came: all of it or none of it.
  const auto keys = make_keys("b" + std::to_string(last_acknowledged + 1) + "-", 16);
  const auto mask = cache.get_batch(keys, out.mutable_view());
  const auto present = std::count(mask.begin(), mask.end(), 1);
  EXPECT_TRUE(present == 0 || present == 16) << present << " of 16 keys of the batch in flight";
  EXPECT_EQ(cache.stats().corrupt_reads, 0u);
}

class CrashTest : public ::testing::TestWithParam<const char*> {};

TEST_P(CrashTest, AcknowledgedPutsSurviveSigkill) {
  TempDir dir;
  std::mt19937_64 rng(test_seed());
  long next = 0;
  std::vector<std::pair<long, long>> ranges;
  for (int round = 0; round < 3; ++round) {
    const long kill_after = 20 + static_cast<long>(rng() % 300);
    const long last = run_and_kill(dir.sub("db"), next, kill_after, GetParam());
    ASSERT_GE(last, next + kill_after - 1);
    ranges.emplace_back(next, last);
    check_after_crash(dir.sub("db"), ranges);
    // The next writer restarts after the batch in flight, whether or not it landed.
    next = last + 2;
    if (HasFatalFailure()) return;
  }
}

// A database held open by another process is a clear error, not a hang or a crash.
TEST(LockedDatabase, AnotherProcessHoldsTheLock) {
  TempDir dir;
  const Writer writer = start_writer(dir.sub("db"), kDim, 0, "async");
  long batch = 0;
  ASSERT_EQ(fscanf(writer.lines, "%ld", &batch), 1);  // it has the database open
  CacheOptions options;
  options.dim = kDim;
  options.durable = RocksDbOptions{};
  options.durable->path = dir.sub("db");
  try {
    EmbeddingCache cache(options);
    ADD_FAILURE() << "opened a database another process holds";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::StoreUnavailable);
    EXPECT_NE(std::string(e.what()).find("is locked"), std::string::npos) << e.what();
  }
  kill(writer.pid, SIGKILL);
  fclose(writer.lines);
  int status = 0;
  waitpid(writer.pid, &status, 0);
  EmbeddingCache cache(options);  // the lock dies with its process
  EXPECT_TRUE(cache.contains("b0-0"));
}

// Synced WAL: nothing acknowledged is lost even on power failure. Async WAL: the log is still
// written before put returns, so a killed process loses nothing either (only a machine crash can).
INSTANTIATE_TEST_SUITE_P(Durability, CrashTest, ::testing::Values("synced", "async"));

}  // namespace
}  // namespace hetcache::test
