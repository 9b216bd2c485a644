// The hetcache command, run as a user runs it: ingest (.npy f32/f16, .fvecs, CSV; resumable),
// search (the nearest key of a stored vector is itself), stats, plan, calibrate, demo, --help,
// and every bad input -- missing, truncated or malformed file, wrong dtype, dimension mismatch,
// a locked database -- giving one line and a non-zero exit with the database unchanged; an ingest
// killed part-way leaving whole batches only.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli_run.hpp"

namespace hetcache::test {
namespace {

TEST(Cli, HelpOnEverySubcommand) {
  for (const char* sub : {"demo", "ingest", "search", "stats", "plan", "calibrate", "bench"}) {
    const Result r = run(std::string(sub) + " --help");
    EXPECT_EQ(r.rc, 0) << sub;
    EXPECT_NE(r.out.find("--"), std::string::npos) << r.out;
  }
  const Result none = run("");
  EXPECT_NE(none.rc, 0);
}

TEST(Cli, IngestIsResumableAndSearchFindsEachStoredVector) {
  TempDir dir;
  const std::string db = dir.path() + "/db", input = dir.path() + "/docs.npy";
  const auto rows = random_rows(500, 48, 1);
  write_f32(input, rows, 48);
  Result r = run("ingest --db " + db + " --input " + input + " --batch 128");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("500 written, 0 unchanged, 0 overwritten, 0 skipped"), std::string::npos)
      << r.out;
  r = run("ingest --db " + db + " --input " + input);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("0 written, 500 unchanged, 0 overwritten, 0 skipped"), std::string::npos)
      << r.out;

  // Queries = stored rows 7, 123, 499: each finds itself first (cosine 1).
  std::vector<float> queries;
  for (const std::size_t i : {7, 123, 499})
    queries.insert(queries.end(), rows.begin() + std::ptrdiff_t(i * 48),
                   rows.begin() + std::ptrdiff_t((i + 1) * 48));
  write_f32(dir.path() + "/q.npy", queries, 48);
  for (const char* strategy : {"adaptive", "cpu-only", "fiber-only"}) {
    r = run("search --db " + db + " --queries " + dir.path() + "/q.npy --k 5 --strategy " +
            strategy + " --out " + dir.path() + "/hits.jsonl");
    ASSERT_EQ(r.rc, 0) << r.out;
    std::ifstream in(dir.path() + "/hits.jsonl");
    const std::string out((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(top_keys(out), (std::vector<std::string>{"docs:7", "docs:123", "docs:499"})) << out;
  }
  // The same hits as .npy: key, row id and score per (query, rank); the ingest gave the file's row
  // i the id i.
  r = run("search --db " + db + " --queries " + dir.path() + "/q.npy --k 5 --out " + dir.path() +
          "/hits.npy");
  ASSERT_EQ(r.rc, 0) << r.out;
  const auto npy = read_hits_npy(dir.path() + "/hits.npy");
  ASSERT_EQ(npy.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(npy[i].size(), 5u);
    EXPECT_EQ(npy[i][0].key, (std::array<const char*, 3>{"docs:7", "docs:123", "docs:499"}[i]));
    EXPECT_NEAR(npy[i][0].score, 1.0f, 1e-5f);
    for (std::size_t j = 0; j < 5; ++j) {
      if (j > 0) {
        EXPECT_LE(npy[i][j].score, npy[i][j - 1].score);
      }
      ASSERT_EQ(npy[i][j].key.rfind("docs:", 0), 0u) << npy[i][j].key;
      EXPECT_EQ(npy[i][j].row, std::stoll(npy[i][j].key.substr(5))) << npy[i][j].key;
    }
  }
  r = run("stats --db " + db);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("vectors    500"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("dimension  48"), std::string::npos) << r.out;
}

TEST(Cli, ReadsFloat16FvecsAndCsvWithKeysFile) {
  TempDir dir;
  const std::string db = dir.path() + "/db";
  std::vector<std::uint16_t> half(20 * 8);
  std::vector<float> exact(20 * 8);
  for (std::size_t i = 0; i < half.size(); ++i) {
    exact[i] = static_cast<float>(int(i % 64) - 32) / 64.0f + 1.0f / 1024.0f;
    half[i] = to_half(exact[i]);
  }
  write_npy(dir.path() + "/h.npy", "<f2", half.data(), half.size() * 2, 20, 8);
  ASSERT_EQ(run("ingest --db " + db + " --input " + dir.path() + "/h.npy").rc, 0);
  {
    std::ofstream f(dir.path() + "/v.fvecs", std::ios::binary);
    for (int r = 0; r < 5; ++r) {
      const std::int32_t d = 8;
      f.write(reinterpret_cast<const char*>(&d), 4);
      f.write(reinterpret_cast<const char*>(exact.data() + r * 8), 32);
    }
  }
  ASSERT_EQ(run("ingest --db " + db + " --input " + dir.path() + "/v.fvecs").rc, 0);
  std::ofstream(dir.path() + "/c.csv") << "0.5,1,2,3,4,5,6,7\n1,1,1,1,1,1,1,1.5\n";
  std::ofstream(dir.path() + "/keys.txt") << "alpha\nbe\"ta\\\n";
  Result r = run("ingest --db " + db + " --input " + dir.path() + "/c.csv --keys " + dir.path() +
                 "/keys.txt");
  ASSERT_EQ(r.rc, 0) << r.out;
  r = run("stats --db " + db);
  EXPECT_NE(r.out.find("vectors    27"), std::string::npos) << r.out;
  // The CSV's second row is its own nearest vector; its key is written as a valid JSON string.
  std::ofstream(dir.path() + "/q.csv") << "1,1,1,1,1,1,1,1.5\n";
  r = run("search --db " + db + " --queries " + dir.path() + "/q.csv --k 1 --metric l2");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("{\"key\":\"be\\\"ta\\\\\",\"id\":26,\"score\":0}"), std::string::npos)
      << r.out;
  // Asking for more hits than the database holds gives that many: 27 columns, every one a hit.
  r = run("search --db " + db + " --queries " + dir.path() + "/q.csv --k 30 --metric l2 --out " +
          dir.path() + "/all.npy");
  ASSERT_EQ(r.rc, 0) << r.out;
  const auto all = read_hits_npy(dir.path() + "/all.npy");
  ASSERT_EQ(all.size(), 1u);
  ASSERT_EQ(all[0].size(), 27u);
  EXPECT_EQ(all[0][0].key, "be\"ta\\");
  EXPECT_EQ(all[0][0].score, 0.0f);
  for (std::size_t j = 0; j < 27; ++j) {
    EXPECT_FALSE(all[0][j].key.empty()) << j;
    EXPECT_FALSE(std::isnan(all[0][j].score)) << j;
  }
  // The float16 rows were widened exactly: the cache holds the same floats.
  {
    EmbeddingCache cache(database_options(db, 8));
    const auto row3 = cache.get("h:3");
    ASSERT_TRUE(row3.has_value());
    for (std::size_t c = 0; c < 8; ++c) EXPECT_EQ((*row3)[c], exact[3 * 8 + c]);
    const auto beta = cache.get("be\"ta\\");
    ASSERT_TRUE(beta.has_value());
    EXPECT_EQ((*beta)[7], 1.5f);
  }
}

TEST(Cli, BadInputIsOneLineAndANonZeroExitAndChangesNothing) {
  TempDir dir;
  const std::string db = dir.path() + "/db";
  write_f32(dir.path() + "/ok.npy", random_rows(10, 16, 2), 16);
  ASSERT_EQ(run("ingest --db " + db + " --input " + dir.path() + "/ok.npy").rc, 0);
  const auto expect_error = [&](const std::string& args, const std::string& says) {
    const Result r = run(args);
    EXPECT_NE(r.rc, 0) << args;
    EXPECT_NE(r.out.find("hetcache: error: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(says), std::string::npos) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  };
  expect_error("ingest --db " + db + " --input " + dir.path() + "/missing.npy", "cannot open");
  write_f32(dir.path() + "/cut.npy", random_rows(10, 16, 3), 16, 5);
  expect_error("ingest --db " + db + " --input " + dir.path() + "/cut.npy", "truncated");
  const std::vector<std::int32_t> i32(160, 5);
  write_npy(dir.path() + "/i32.npy", "<i4", i32.data(), i32.size() * 4, 10, 16);
  expect_error("ingest --db " + db + " --input " + dir.path() + "/i32.npy", "dtype");
  write_f32(dir.path() + "/d32.npy", random_rows(10, 32, 4), 32);
  expect_error("ingest --db " + db + " --input " + dir.path() + "/d32.npy", "dimension mismatch");
  expect_error("search --db " + db + " --queries " + dir.path() + "/d32.npy", "dimension mismatch");
  std::ofstream(dir.path() + "/two.txt") << "a\nb\n";
  expect_error(
      "ingest --db " + db + " --input " + dir.path() + "/ok.npy --keys " + dir.path() + "/two.txt",
      "has 2 keys, ");
  std::ofstream(dir.path() + "/bad.csv") << "1,2,3\n4,5\n";
  expect_error("ingest --db " + db + " --input " + dir.path() + "/bad.csv", "line 2");
  {
    std::ofstream f(dir.path() + "/cut.fvecs", std::ios::binary);
    const std::int32_t d = 16;
    f.write(reinterpret_cast<const char*>(&d), 4);
    f.write("abcdefgh", 8);
  }
  expect_error("ingest --db " + db + " --input " + dir.path() + "/cut.fvecs", "truncated");
  expect_error("search --db " + dir.path() + "/nothing --queries " + dir.path() + "/ok.npy",
               "not a hetcache database");
  {
    // Locked: this process holds the database open.
    EmbeddingCache holder(database_options(db, 16));
    expect_error("ingest --db " + db + " --input " + dir.path() + "/ok.npy", "locked");
  }
  const Result stats = run("stats --db " + db);
  EXPECT_NE(stats.out.find("vectors    10"), std::string::npos) << stats.out;
}

// An ingest killed part-way (SIGKILL, after its first progress line) leaves whole batches only:
// the first m * batch rows, each intact; running it again writes exactly the rest.
TEST(Cli, AKilledIngestLeavesWholeBatchesAndResumes) {
  TempDir dir;
  const std::string db = dir.path() + "/db", input = dir.path() + "/big.npy";
  constexpr std::size_t kRows = 400000, kDim = 16, kBatch = 1000;
  const auto rows = random_rows(kRows, kDim, 9);
  write_f32(input, rows, kDim);
  int err[2];
  ASSERT_EQ(::pipe(err), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(err[1], 2);
    ::close(err[0]);
    ::execl(HETCACHE_CLI, HETCACHE_CLI, "ingest", "--db", db.c_str(), "--input", input.c_str(),
            "--batch", "1000", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(err[1]);
  // The first progress line of the writing pass (the checking pass before it writes nothing).
  std::string progress;
  char c;
  while (progress.find("\ningest") == std::string::npos && ::read(err[0], &c, 1) == 1)
    progress += c;
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(err[0]);
  ASSERT_TRUE(WIFSIGNALED(status)) << "finished before the kill: " << progress;
  std::size_t stored = 0;
  {
    EmbeddingCache cache(database_options(db, kDim));
    stored = static_cast<std::size_t>(cache.scan([](auto, auto, auto) {}).visited);
    EXPECT_EQ(stored % kBatch, 0u) << stored;
    EXPECT_GT(stored, 0u);
    EXPECT_LT(stored, kRows);
    // The rows stored are the first ones, whole; the next batch is absent.
    std::vector<float> out(kDim);
    for (std::size_t i = 0; i < stored; i += 997) {
      ASSERT_TRUE(cache.get("big:" + std::to_string(i), out)) << i;
      EXPECT_TRUE(std::equal(out.begin(), out.end(), rows.begin() + std::ptrdiff_t(i * kDim)));
    }
    EXPECT_FALSE(cache.contains("big:" + std::to_string(stored)));
  }
  const Result r = run("ingest --db " + db + " --input " + input + " --batch 1000");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find(std::to_string(kRows - stored) + " written, " + std::to_string(stored) +
                       " unchanged"),
            std::string::npos)
      << r.out;
}

// --dtype bf16 stores each vector in 2 bytes per element, reads back rounded (as the library's
// bf16 does), and a re-run of the same input finds every vector unchanged; a bad type is named.
TEST(Cli, DtypeStoresTheVectorsRounded) {
  TempDir dir;
  const std::string db = dir.sub("db"), input = dir.sub("emb.npy");
  constexpr std::size_t kRows = 200, kDim = 24;
  const auto rows = random_rows(kRows, kDim, 7);
  write_f32(input, rows, kDim);
  Result r = run("ingest --quiet --dtype bf16 --db " + db + " --input " + input);
  ASSERT_EQ(r.rc, 0) << r.out;
  r = run("ingest --quiet --dtype bf16 --db " + db + " --input " + input);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("0 written, 200 unchanged"), std::string::npos) << r.out;
  {
    EmbeddingCache cache(database_options(db, kDim));
    const CompactSet bf16 =
        SimilarityEngine().compact_set(MatrixView(rows.data(), kRows, kDim), StorageType::Bf16);
    for (const std::size_t row : {0u, 99u, 199u}) {
      const auto got = cache.get("emb:" + std::to_string(row));
      ASSERT_TRUE(got.has_value()) << row;
      EXPECT_EQ(*got, bf16.decoded_row(row)) << row;
    }
  }
  r = run("ingest --quiet --dtype fp8 --db " + db + " --input " + input);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("--dtype must be f32, f16, bf16 or i8, got 'fp8'"), std::string::npos)
      << r.out;
}

// A regenerated file (same name, so the same keys, new values) is never silently dropped: the
// ingest stops before the batch holding the first changed row and names it, the batches before it
// stay; --on-conflict skip keeps the stored vectors, overwrite replaces them, and search then
// finds the new ones.
TEST(Cli, ChangedVectorsStopTheIngestUnlessOnConflictSaysOtherwise) {
  TempDir dir;
  const std::string db = dir.sub("db"), input = dir.sub("model_out.npy");
  constexpr std::size_t kRows = 300, kDim = 16;
  auto rows = random_rows(kRows, kDim, 1);
  write_f32(input, rows, kDim);
  ASSERT_EQ(run("ingest --quiet --db " + db + " --input " + input).rc, 0);
  // Rows 150 and 260 change; rows 300-349 are new.
  auto regenerated = rows;
  regenerated[150 * kDim + 3] += 0.5f;
  regenerated[260 * kDim] = -regenerated[260 * kDim];
  const auto extra = random_rows(50, kDim, 2);
  regenerated.insert(regenerated.end(), extra.begin(), extra.end());
  write_f32(input, regenerated, kDim);
  Result r = run("ingest --quiet --batch 100 --db " + db + " --input " + input);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("ingest stopped at rows 100-199 of " + input +
                       ": 1 of 100 keys already hold a different vector (the first: "
                       "'model_out:150'); nothing of this batch was written; the 100 rows "
                       "before were stored. --on-conflict overwrite"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  r = run("stats --db " + db);
  EXPECT_NE(r.out.find("vectors    300\n"), std::string::npos) << r.out;
  r = run("ingest --quiet --on-conflict skip --db " + db + " --input " + input);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("50 written, 298 unchanged, 0 overwritten, 2 skipped"), std::string::npos)
      << r.out;
  r = run("ingest --quiet --on-conflict overwrite --db " + db + " --input " + input);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("0 written, 348 unchanged, 2 overwritten, 0 skipped"), std::string::npos)
      << r.out;
  // The stored vectors are the new ones, bit for bit.
  {
    EmbeddingCache cache(database_options(db, kDim));
    for (const std::size_t row : {150u, 260u, 349u}) {
      const auto got = cache.get("model_out:" + std::to_string(row));
      ASSERT_TRUE(got.has_value()) << row;
      EXPECT_TRUE(
          std::equal(got->begin(), got->end(), regenerated.begin() + std::ptrdiff_t(row * kDim)))
          << row;
    }
  }
  r = run("ingest --quiet --on-conflict replace --db " + db + " --input " + input);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("--on-conflict must be error, overwrite or skip, got 'replace'"),
            std::string::npos)
      << r.out;
}

TEST(Cli, PlanCalibrateAndDemoRun) {
  TempDir dir;
  const std::string env = "HETCACHE_CACHE_DIR=" + dir.path() + " ";
  Result r = run("plan --op get_batch --items 500 --strategy hybrid");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("strategy hybrid: fiber"), std::string::npos) << r.out;
  // The shape given is the shape explained: 4 x 1000 x 32 is 128,000 multiply-adds of work, under
  // Hybrid's cpu_min_multiply_adds (4M); 4 x 100000 x 32 is 12.8M, over it.
  r = run("plan --op similarity --items 1000 --queries 4 --dim 32 --strategy hybrid");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("strategy hybrid: sequential"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1.28e+05 multiply-adds"), std::string::npos) << r.out;
  r = run("plan --op similarity --items 100000 --queries 4 --dim 32 --strategy hybrid");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("strategy hybrid: cpu"), std::string::npos) << r.out;
  r = run("plan --op get_batch --items 500 --durable --strategy adaptive");
  ASSERT_EQ(r.rc, 0) << r.out;
  r = run("plan --strategy nonsense");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("unknown strategy"), std::string::npos) << r.out;
  ::setenv("HETCACHE_CACHE_DIR", dir.path().c_str(), 1);
  r = run("calibrate");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find(dir.path()), std::string::npos) << r.out;
  r = run("demo --runs 1 --quiet --db " + dir.path() + "/demo");
  ASSERT_EQ(r.rc, 0) << r.out;
  for (const char* table : {"CPU-intensive", "I/O-intensive", "Mixed workload", "Adaptive ran on"})
    EXPECT_NE(r.out.find(table), std::string::npos) << table << "\n" << r.out;
  // bench: the CSV, and the PNG gnuplot draws from it.
  r = run("bench --runs 1 --quiet --cpu-sizes 100,200 --io-sizes 10 --plot " + dir.path() +
          "/m.png --db " + dir.path() + "/bench");
  ASSERT_EQ(r.rc, 0) << r.out;
  std::ifstream csv(dir.path() + "/m.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header, "table,size,strategy,ms");
  int lines = 0;
  for (std::string line; std::getline(csv, line);) ++lines;
  EXPECT_EQ(lines, 4 * 2 + 4 + 4 * 3);  // per strategy: 2 CPU sizes, 1 I/O size, 3 mixed phases
  std::ifstream png(dir.path() + "/m.png", std::ios::binary);
  const std::string image((std::istreambuf_iterator<char>(png)), {});
  EXPECT_EQ(image.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_GT(image.size(), 10000u);  // two panels with lines, not an empty canvas
  // --json and --csv alone: every measurement in both, the same cells.
  r = run("bench --runs 1 --quiet --cpu-sizes 100 --io-sizes 10 --json " + dir.path() +
          "/m.json --csv " + dir.path() + "/only.csv --db " + dir.path() + "/bench2");
  ASSERT_EQ(r.rc, 0) << r.out;
  std::ifstream json_in(dir.path() + "/m.json");
  const std::string json((std::istreambuf_iterator<char>(json_in)), {});
  EXPECT_EQ(json.front(), '[') << json;
  EXPECT_EQ(std::count(json.begin(), json.end(), '{'), 4 + 4 + 4 * 3) << json;
  EXPECT_NE(json.find("{\"table\":\"cpu\",\"size\":100,\"strategy\":\"adaptive\",\"ms\":"),
            std::string::npos)
      << json;
  // Adaptive's cells say where it ran: each mixed phase is 100 scheduled calls per run, and every
  // phase ran in every run (at least --runs, more while the mixed workload is under its 3 s).
  std::uint64_t first_phase_calls = 0;
  for (const char* phase : {"mixed-ingest", "mixed-search", "mixed-access"}) {
    const std::size_t at = json.find(std::string("{\"table\":\"") + phase +
                                     "\",\"size\":1000,\"strategy\":\"adaptive\"");
    ASSERT_NE(at, std::string::npos) << phase << "\n" << json;
    const std::string object = json.substr(at, json.find('}', at) - at);
    const std::size_t ran_on = object.find("\"ran_on\":\"");
    ASSERT_NE(ran_on, std::string::npos) << object;
    std::istringstream tiers(object.substr(ran_on + 10));
    std::uint64_t calls = 0;
    for (std::string tier, count; tiers >> tier >> count;) calls += std::stoull(count.substr(1));
    EXPECT_GE(calls, 100u) << object;
    EXPECT_EQ(calls % 100, 0u) << object;
    if (first_phase_calls == 0) first_phase_calls = calls;
    EXPECT_EQ(calls, first_phase_calls) << object;
  }
  std::ifstream only(dir.path() + "/only.csv");
  lines = 0;
  for (std::string line; std::getline(only, line);) ++lines;
  EXPECT_EQ(lines, 1 + 4 + 4 + 4 * 3);
  // Without gnuplot it says so before measuring anything.
  r = run_with_env("PATH=/nonexistent", "bench --plot " + dir.path() + "/n.png");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("needs gnuplot"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
}

}  // namespace
}  // namespace hetcache::test
