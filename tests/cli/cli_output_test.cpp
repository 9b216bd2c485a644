// What the command writes never destroys anything: a failed search leaves an earlier output as it
// was, an output inside a database is refused, write errors (file too large, a full device) are
// one line and exit 1, unknown extensions are refused; NaN scores rank last across scan batches
// and never reach JSON as NaN.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "cli/cli_run.hpp"

namespace hetcache::test {
namespace {

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

struct Database {
  TempDir dir;
  std::string db = dir.sub("db"), queries = dir.sub("q.npy");
  Database() {
    write_f32(dir.sub("v.npy"), random_rows(300, 16, 1), 16);
    write_f32(queries, random_rows(4, 16, 2), 16);
    EXPECT_EQ(run("ingest --quiet --db " + db + " --input " + dir.sub("v.npy")).rc, 0);
  }
  Result search(const std::string& extra) {
    return run("search --quiet --db " + db + " --queries " + queries + " " + extra);
  }
};

TEST(CliOutput, AFailedSearchLeavesTheEarlierOutputAsItWas) {
  Database d;
  const std::string out = d.dir.sub("hits.npy");
  ASSERT_EQ(d.search("--out " + out).rc, 0);
  const std::string before = read_file(out);
  ASSERT_GT(before.size(), 100u);
  // Fails after the output was opened: queries of another dimension.
  write_f32(d.dir.sub("q32.npy"), random_rows(2, 32, 3), 32);
  const auto listing = files_in(d.dir.path());
  Result r = run("search --db " + d.db + " --queries " + d.dir.sub("q32.npy") + " --out " + out);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("dimension mismatch"), std::string::npos) << r.out;
  EXPECT_EQ(read_file(out), before);
  EXPECT_EQ(files_in(d.dir.path()), listing);  // no temporary file left behind
  // A file too large for RLIMIT_FSIZE (EFBIG): one line, exit 1, the old output untouched.
  r = run_with_env("ulimit -f 1;", "search --quiet --db " + d.db + " --queries " + d.queries +
                                       " --k 100 --out " + out);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find(out + ": write failed: File too large"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_EQ(read_file(out), before);
  EXPECT_EQ(files_in(d.dir.path()), listing);
}

TEST(CliOutput, AnOutputInsideADatabaseIsRefused) {
  Database d;
  const std::string current = read_file(d.db + "/CURRENT");
  for (const std::string& out : {d.db + "/CURRENT", d.db + "/hits.npy", d.db + "/lost/x.jsonl"}) {
    const Result r = d.search("--out " + out);
    EXPECT_EQ(r.rc, 1) << out;
    EXPECT_NE(r.out.find("hetcache: error: "), std::string::npos) << r.out;
  }
  EXPECT_NE(d.search("--out " + d.db + "/hits.npy").out.find("is inside the database directory"),
            std::string::npos);
  EXPECT_EQ(read_file(d.db + "/CURRENT"), current);
  EXPECT_EQ(d.search("--out " + d.dir.sub("fine.npy")).rc, 0);
}

TEST(CliOutput, WriteErrorsAreOneLineAndExitOne) {
  Database d;
  Result r = d.search("--out /dev/full");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("No space left on device"), std::string::npos) << r.out;
  r = run_stdout_to("stats --db " + d.db, "/dev/full");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("cannot write to standard output"), std::string::npos) << r.out;
  r = run_stdout_to("ingest --quiet --db " + d.db + " --input " + d.queries, "/dev/full");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("cannot write to standard output"), std::string::npos) << r.out;
  r = run_stdout_to("search --quiet --db " + d.db + " --queries " + d.queries, "/dev/full");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("No space left on device"), std::string::npos) << r.out;
}

TEST(CliOutput, TheExtensionChoosesTheFormatAndUnknownOnesAreRefused) {
  Database d;
  Result r = d.search("--out " + d.dir.sub("hits.csv"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("unknown extension '.csv'"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(d.dir.sub("hits.csv")));
  ASSERT_EQ(d.search("--k 3 --out " + d.dir.sub("hits.NPY")).rc, 0);
  EXPECT_EQ(read_hits_npy(d.dir.sub("hits.NPY")).size(), 4u);
  ASSERT_EQ(d.search("--k 3 --out " + d.dir.sub("hits.jsonl")).rc, 0);
  EXPECT_EQ(top_keys(read_file(d.dir.sub("hits.jsonl"))).size(), 4u);
  r = run("bench --plot " + d.dir.sub("plot.jpg"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("the plot is a PNG"), std::string::npos) << r.out;
}

// The command searches a database in batches of 65,536 rows and merges them. A batch whose
// top-k holds NaN scores (vectors written with allow_non_finite) must not push a real hit of a
// later batch out, and JSON shows such a score as null.
TEST(CliOutput, NanScoresRankLastAcrossBatches) {
  TempDir dir;
  const std::string db = dir.sub("db");
  constexpr std::size_t kDim = 4, kRows = 70000;
  {
    CacheOptions options = database_options(db, kDim);
    options.allow_non_finite = true;
    EmbeddingCache cache(options);
    std::vector<std::string> keys;
    Matrix values(kRows, kDim);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (std::size_t i = 0; i < kRows; ++i) {
      char key[16];
      std::snprintf(key, sizeof key, "k%06zu", i);  // key order = scan order
      keys.emplace_back(key);
      // The first batch: NaN rows but for two weak hits; the second: one exact hit.
      const bool first_batch = i < 65536;
      for (std::size_t c = 0; c < kDim; ++c)
        values.row(i)[c] = first_batch ? (i == 5 || i == 9 ? 0.1f * float(c + 1) : nan)
                                       : (i == 69999 ? 1.0f : -1.0f);
    }
    cache.put_batch(keys, values.view());
  }
  std::vector<float> q(kDim, 1.0f);
  write_f32(dir.sub("q.npy"), q, kDim);
  Result r = run("search --quiet --metric dot --k 4 --db " + db + " --queries " + dir.sub("q.npy") +
                 " --out " + dir.sub("h.npy"));
  ASSERT_EQ(r.rc, 0) << r.out;
  const auto hits = read_hits_npy(dir.sub("h.npy"));
  ASSERT_EQ(hits.size(), 1u);
  ASSERT_EQ(hits[0].size(), 4u);
  EXPECT_EQ(hits[0][0].key, "k069999");
  EXPECT_EQ(hits[0][0].score, 4.0f);
  EXPECT_EQ(hits[0][1].key, "k000005");
  EXPECT_EQ(hits[0][2].key, "k000009");
  EXPECT_EQ(hits[0][3].score, -4.0f);  // a real score ahead of every NaN
  r = run("search --quiet --metric dot --k 70000 --db " + db + " --queries " + dir.sub("q.npy"));
  ASSERT_EQ(r.rc, 0);
  EXPECT_EQ(r.out.find("nan"), std::string::npos);
  EXPECT_NE(r.out.find("\"score\":null"), std::string::npos);
}

}  // namespace
}  // namespace hetcache::test
