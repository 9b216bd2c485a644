// Faults survived: the disk filling up (RLIMIT_FSIZE with SIGXFSZ ignored, as a write past the
// limit then fails with EFBIG like ENOSPC) while a database is created, while ingesting and in
// put_batch; an ingest killed (SIGKILL) at 100 random moments and resumed each time. Never an
// abort, the database always reopens, nothing acknowledged is lost, every checksum verifies.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli_run.hpp"

namespace hetcache::test {
namespace {

using Clock = std::chrono::steady_clock;

// Rows of `rows` stored under "<stem>:<i>" with exactly their values; -1 when anything else is
// stored or a value differs.
long exactly_stored(const std::string& db, const std::string& stem, const std::vector<float>& rows,
                    std::size_t dim) {
  EmbeddingCache cache(database_options(db, dim));
  long same = 0;
  bool wrong = false;
  const ScanCounts counts =
      cache.scan([&](std::span<const std::string> keys, auto, MatrixView values) {
        for (std::size_t i = 0; i < keys.size(); ++i) {
          const std::size_t row = std::stoul(keys[i].substr(stem.size() + 1));
          wrong = wrong || keys[i].rfind(stem + ":", 0) != 0 || row * dim >= rows.size() ||
                  !std::equal(values.row(i), values.row(i) + dim,
                              rows.begin() + std::ptrdiff_t(row * dim));
          ++same;
        }
      });
  EXPECT_EQ(counts.corrupt, 0u);
  return wrong ? -1 : same;
}

TEST(CliFaults, ADiskFullWhileCreatingOrIngestingIsAnErrorAndTheDatabaseReopens) {
  TempDir dir;
  constexpr std::size_t kRows = 5000, kDim = 32;
  const auto rows = random_rows(kRows, kDim, 1);
  write_f32(dir.sub("v.npy"), rows, kDim);
  int limits_tried = 0;
  // From a limit no file survives (1 KiB) to one where part of the ingest succeeds.
  for (const int kib : {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 640}) {
    const std::string db = dir.sub("db" + std::to_string(kib));
    const Result full =
        run_with_env("ulimit -f " + std::to_string(kib * 2) + ";",  // 512-byte units
                     "ingest --quiet --batch 500 --db " + db + " --input " + dir.sub("v.npy"));
    ++limits_tried;
    EXPECT_EQ(full.rc, 1) << kib << " KiB: " << full.out;  // an error, not a signal (-1)
    EXPECT_EQ(full.out.rfind("hetcache: error: ", 0), 0u) << full.out;
    EXPECT_NE(full.out.find("File too large"), std::string::npos) << full.out;
    const Result again = run("ingest --quiet --db " + db + " --input " + dir.sub("v.npy"));
    ASSERT_EQ(again.rc, 0) << kib << " KiB: " << again.out;
    EXPECT_EQ(exactly_stored(db, "v", rows, kDim), long(kRows)) << kib << " KiB";
  }
  std::printf("disk-full limits tried: %d, every database reopened complete\n", limits_tried);
}

// A child writes batches through the library under a file-size limit and acknowledges each one
// put_batch returned from; when the limit is hit it must get an Error (not abort), and every
// acknowledged batch must be in the database afterwards, exact.
TEST(CliFaults, ADiskFullInPutBatchLosesNothingAcknowledged) {
  TempDir dir;
  constexpr std::size_t kDim = 64, kBatch = 200;
  for (const rlim_t limit : {rlim_t{4} << 10, rlim_t{64} << 10, rlim_t{1} << 20, rlim_t{3} << 20}) {
    const std::string db = dir.sub("db" + std::to_string(limit));
    int acks[2];
    ASSERT_EQ(::pipe(acks), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(acks[0]);
      ::signal(SIGXFSZ, SIG_IGN);
      const rlimit fsize{limit, limit};
      ::setrlimit(RLIMIT_FSIZE, &fsize);
      try {
        CacheOptions options = database_options(db, kDim);
        options.durable->durability = Durability::SyncedWal;
        EmbeddingCache cache(options);
        for (std::uint32_t b = 0;; ++b) {
          std::vector<std::string> keys;
          for (std::size_t i = 0; i < kBatch; ++i)
            keys.push_back("b" + std::to_string(b) + ":" + std::to_string(i));
          cache.put_batch(keys, matrix_for(keys, 1, kDim).view());
          if (::write(acks[1], &b, sizeof b) != sizeof b) ::_exit(4);
        }
      } catch (const Error&) {
        ::_exit(3);
      }
      ::_exit(5);
    }
    ::close(acks[1]);
    std::uint32_t b = 0, acknowledged = 0;
    while (::read(acks[0], &b, sizeof b) == sizeof b) acknowledged = b + 1;
    ::close(acks[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status) << " at " << limit;
    EXPECT_EQ(WEXITSTATUS(status), 3) << limit;
    if (acknowledged == 0 && !std::filesystem::exists(db + "/CURRENT")) continue;
    EmbeddingCache cache(database_options(db, kDim));
    for (std::uint32_t batch = 0; batch < acknowledged; ++batch) {
      std::vector<std::string> keys;
      for (std::size_t i = 0; i < kBatch; ++i)
        keys.push_back("b" + std::to_string(batch) + ":" + std::to_string(i));
      Matrix out(kBatch, kDim);
      const auto mask = cache.get_batch(keys, out.mutable_view());
      for (std::size_t i = 0; i < kBatch; ++i) {
        ASSERT_EQ(mask[i], 1) << keys[i] << " acknowledged but lost, limit " << limit;
        ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], 1, kDim)));
      }
    }
    if (limit >= (rlim_t{1} << 20)) {
      EXPECT_GT(acknowledged, 0u) << limit;
    }
    // The reopened database takes writes again.
    const std::string more[] = {"after"};
    cache.put_batch(more, matrix_for({"after"}, 1, kDim).view());
  }
}

// SIGKILL at 100 random moments of an ingest, resumed each time: whole batches only, and in the
// end exactly the input, every checksum verified.
TEST(CliFaults, AnIngestKilledAtRandomMomentsEndsWithExactlyTheInput) {
  TempDir dir;
  constexpr std::size_t kRows = 40000, kDim = 32;
  const auto rows = random_rows(kRows, kDim, 2);
  const std::string db = dir.sub("db"), input = dir.sub("v.npy");
  write_f32(input, rows, kDim);
  // How long a whole ingest takes here, to spread the kills over it. A resumed ingest finds its
  // first rows stored and unchanged and runs faster; each run that finishes before its kill
  // shortens the span to 9/10 of that run's time.
  const auto start = Clock::now();
  ASSERT_EQ(run("ingest --quiet --batch 500 --db " + dir.sub("timing") + " --input " + input).rc,
            0);
  const auto whole_us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  std::mt19937_64 rng(std::random_device{}());
  long span_us = whole_us.count();
  int killed = 0, finished = 0;
  for (int i = 0; i < 100; ++i) {
    const auto started = Clock::now();
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execl(HETCACHE_CLI, HETCACHE_CLI, "ingest", "--quiet", "--batch", "500", "--db", db.c_str(),
              "--input", input.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Until the kill, the run is watched so a run that ends first is timed.
    const auto kill_at =
        started + std::chrono::microseconds(std::uniform_int_distribution<long>(0, span_us)(rng));
    int status = 0;
    bool ended = false;
    while (!(ended = ::waitpid(pid, &status, WNOHANG) == pid) && Clock::now() < kill_at)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    if (!ended) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
    if (WIFSIGNALED(status)) {
      ++killed;
    } else {
      const auto ran =
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
      span_us = std::min(span_us, ran.count() * 9 / 10);
      ASSERT_EQ(WEXITSTATUS(status), 0) << "iteration " << i;
      ++finished;
    }
    if (std::filesystem::exists(db + "/CURRENT") && i % 10 == 9) {
      const long stored = exactly_stored(db, "v", rows, kDim);
      ASSERT_GE(stored, 0) << "a wrong value after kill " << i;
      EXPECT_TRUE(stored % 500 == 0 || stored == long(kRows)) << stored;
    }
  }
  const Result last = run("ingest --quiet --batch 500 --db " + db + " --input " + input);
  ASSERT_EQ(last.rc, 0) << last.out;
  EXPECT_EQ(exactly_stored(db, "v", rows, kDim), long(kRows));
  const Result stats = run("stats --db " + db);
  EXPECT_NE(stats.out.find("vectors    " + std::to_string(kRows) + "\nexpired    0\ncorrupt    0"),
            std::string::npos)
      << stats.out;
  std::printf("kill loop: %d killed mid-run, %d finished first, 0 vectors lost\n", killed,
              finished);
  EXPECT_GT(killed, 50);
}

}  // namespace
}  // namespace hetcache::test
