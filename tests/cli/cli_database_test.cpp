// The command and the database directory: read-only work creates nothing and runs beside a
// writer; reopening does not grow the directory; damage is reported as corruption with the file
// and offset (never as "locked" or "not a database") and `repair` salvages every value that
// verifies; --version and --strategy gpu-only say what this build and machine have.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "cli/cli_run.hpp"

namespace hetcache::test {
namespace {

namespace fs = std::filesystem;

// Every file of a directory with its size and modification time.
std::map<std::string, std::pair<std::uintmax_t, fs::file_time_type>> snapshot(
    const std::string& dir) {
  std::map<std::string, std::pair<std::uintmax_t, fs::file_time_type>> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[e.path().string()] = {e.file_size(), e.last_write_time()};
  return files;
}

TEST(CliDatabase, SearchAndStatsCreateNothingAndRunBesideAWriter) {
  TempDir dir;
  const std::string db = dir.sub("db"), v = dir.sub("v.npy");
  write_f32(v, random_rows(500, 16, 1), 16);
  ASSERT_EQ(run("ingest --quiet --db " + db + " --input " + v).rc, 0);
  const auto before = snapshot(db);
  for (int i = 0; i < 3; ++i) {
    Result r = run("stats --db " + db);
    ASSERT_EQ(r.rc, 0) << r.out;
    r = run("search --quiet --db " + db + " --queries " + v + " --out " + dir.sub("h.npy"));
    ASSERT_EQ(r.rc, 0) << r.out;
  }
  EXPECT_EQ(snapshot(db), before);
  // A writer holds the database (its lock) and adds vectors; readers still run and see the
  // database as it was when they opened.
  EmbeddingCache writer(database_options(db, 16));
  writer.put("added", std::vector<float>(16, 0.25f));
  Result r = run("stats --db " + db);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("vectors    501"), std::string::npos) << r.out;
  r = run("search --quiet --db " + db + " --queries " + v + " --k 1");
  EXPECT_EQ(r.rc, 0) << r.out;
  // Writing beside it is refused as locked.
  r = run("ingest --quiet --db " + db + " --input " + v);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("is locked"), std::string::npos) << r.out;
}

// A fleet: four reader processes search and count one database over and over while another
// process ingests 400,000 vectors into it (readers open it as followers of that writer). Every
// reader run succeeds, the counts a reader sees never go down, some reader sees the ingest part
// done, and the ingest is not disturbed.
TEST(CliDatabase, FourReadersSearchWhileOneProcessIngests) {
  TempDir dir;
  const std::string db = dir.sub("db"), seed = dir.sub("seed.npy"), big = dir.sub("big.npy"),
                    q = dir.sub("q.npy");
  write_f32(seed, random_rows(1000, 32, 1), 32);
  write_f32(big, random_rows(400000, 32, 2), 32);
  write_f32(q, random_rows(4, 32, 3), 32);
  ASSERT_EQ(run("ingest --quiet --db " + db + " --input " + seed).rc, 0);
  const std::string cli = HETCACHE_CLI, d = dir.path();
  // Each reader runs search and stats while the writer lives, then once more after it exits.
  const std::string script =
      "set -u\n" + cli + " ingest --quiet --batch 500 --db " + db + " --input " + big + " >" + d +
      "/ingest.out 2>&1 &\nw=$!\n"
      "one() {\n"
      "  " +
      cli + " search --quiet --k 3 --db " + db + " --queries " + q + " --out " + d +
      "/hits$1.jsonl >" + d + "/search$1.out 2>&1 || cat " + d + "/search$1.out >>" + d +
      "/failed$1\n"
      "  " +
      cli + " stats --db " + db + " >" + d + "/stats$1.out 2>&1 || cat " + d + "/stats$1.out >>" +
      d +
      "/failed$1\n"
      "  awk '/^vectors/ {print $2}' " +
      d + "/stats$1.out >>" + d +
      "/counts$1\n"
      "}\n"
      "for r in 1 2 3 4; do (while kill -0 $w 2>/dev/null; do one $r; done; one $r) & done\n"
      "wait $w; echo $? >" +
      d + "/ingest.rc\nwait\n";
  std::ofstream(dir.sub("fleet.sh")) << script;
  ASSERT_EQ(std::system(("bash " + dir.sub("fleet.sh")).c_str()), 0);
  EXPECT_EQ(read_file(dir.sub("ingest.rc")), "0\n") << read_file(dir.sub("ingest.out"));
  std::size_t part_done = 0;
  for (int r = 1; r <= 4; ++r) {
    const std::string failed = dir.sub("failed" + std::to_string(r));
    EXPECT_FALSE(fs::exists(failed)) << read_file(failed);
    std::istringstream counts(read_file(dir.sub("counts" + std::to_string(r))));
    std::uint64_t previous = 0, count = 0, runs = 0;
    while (counts >> count) {
      EXPECT_GE(count, previous) << "reader " << r << " saw the database shrink";
      EXPECT_GE(count, 1000u);
      part_done += count > 1000 && count < 401000;
      previous = count;
      ++runs;
    }
    EXPECT_GE(runs, 2u) << "reader " << r;
    EXPECT_EQ(previous, 401000u) << "reader " << r << "'s last count, after the ingest";
  }
  EXPECT_GT(part_done, 0u) << "no reader saw the ingest under way";
}

// One database, one collection per model: each with its own dimension, listed by stats, searched
// by name; a file of the wrong dimension or a missing collection is one line naming both sides.
TEST(CliDatabase, CollectionsHoldOneModelEachAndStatsListsThem) {
  TempDir dir;
  const std::string db = dir.sub("db"), text = dir.sub("text.npy"), images = dir.sub("images.npy");
  write_f32(text, random_rows(30, 16, 1), 16);
  write_f32(images, random_rows(20, 48, 2), 48);
  ASSERT_EQ(run("ingest --quiet --db " + db + " --collection text --input " + text).rc, 0);
  ASSERT_EQ(run("ingest --quiet --db " + db + " --collection images --input " + images).rc, 0);
  Result r = run("ingest --quiet --db " + db + " --collection text --input " + images);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("the input has dimension 48, the collection 'text' of the database '" + db +
                       "' holds dimension 16"),
            std::string::npos)
      << r.out;
  r = run("stats --db " + db);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("collection images\ndimension  48\nvectors    20\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("collection text\ndimension  16\nvectors    30\n"), std::string::npos)
      << r.out;
  r = run("stats --db " + db + " --collection text");
  EXPECT_EQ(r.out.find("images"), std::string::npos) << r.out;
  r = run("search --quiet --k 1 --db " + db + " --collection images --queries " + images);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(top_keys(r.out).size(), 20u);
  EXPECT_EQ(top_keys(r.out)[3], "images:3");
  r = run("search --quiet --db " + db + " --collection audio --queries " + images);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("holds no collection 'audio' (it holds: images, text)"), std::string::npos)
      << r.out;
  r = run("search --quiet --db " + db + " --queries " + images);  // "default" was never made
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("holds no collection 'default'"), std::string::npos) << r.out;
}

// An input of 65536 rows or more goes in as table files (bulk ingest), every vector found again;
// a re-run writes nothing and a changed vector stops it as in the online path, which --online
// (and any smaller input) takes.
TEST(CliDatabase, ALargeInputGoesInAsTableFiles) {
  TempDir dir;
  const std::string db = dir.sub("db"), v = dir.sub("v.npy"), q = dir.sub("q.npy");
  constexpr std::size_t kRows = 70000, kDim = 8;
  std::vector<float> rows = random_rows(kRows, kDim, 3);
  write_f32(v, rows, kDim);
  const std::vector<std::size_t> probes = {0, 4095, 4096, 65535, 65536, 69999};
  std::vector<float> queries;
  for (const auto i : probes) queries.insert(queries.end(), &rows[i * kDim], &rows[(i + 1) * kDim]);
  write_f32(q, queries, kDim);
  Result r = run("ingest --quiet --db " + db + " --input " + v);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find(": 70000 written, 0 unchanged, 0 overwritten, 0 skipped"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("written as table files in 1 batch\n"), std::string::npos) << r.out;
  r = run("search --quiet --k 1 --metric l2 --db " + db + " --queries " + q);
  ASSERT_EQ(r.rc, 0) << r.out;
  std::vector<std::string> expected;
  for (const auto i : probes) expected.push_back("v:" + std::to_string(i));
  EXPECT_EQ(top_keys(r.out), expected) << r.out;
  r = run("stats --db " + db);
  EXPECT_NE(r.out.find("vectors    70000\n"), std::string::npos) << r.out;
  r = run("ingest --quiet --db " + db + " --input " + v);
  EXPECT_NE(r.out.find(": 0 written, 70000 unchanged"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("table files"), std::string::npos) << r.out;
  rows[12345 * kDim] += 1.0f;
  write_f32(v, rows, kDim);
  r = run("ingest --quiet --db " + db + " --input " + v);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("1 of 70000 keys already hold a different vector (the first: 'v:12345')"),
            std::string::npos)
      << r.out;
  r = run("ingest --quiet --online --db " + dir.sub("online") + " --input " + v);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find(": 70000 written"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("table files"), std::string::npos) << r.out;
}

// A database on a read-only directory (another user's, a read-only mount) can be searched: run
// as a user without write permission (root writes anywhere, so root runs it as nobody).
TEST(CliDatabase, ADatabaseInAReadOnlyDirectoryCanBeSearched) {
  TempDir dir;
  const std::string db = dir.sub("db"), v = dir.sub("v.npy");
  write_f32(v, random_rows(200, 16, 5), 16);
  ASSERT_EQ(run("ingest --quiet --db " + db + " --input " + v).rc, 0);
  ASSERT_EQ(::system(("chmod -R a-w,a+rX " + dir.path()).c_str()), 0);
  const std::string as_reader =
      ::geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
  const auto before = snapshot(db);
  Result r = run_with_env(as_reader, "stats --db " + db);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("vectors    200"), std::string::npos) << r.out;
  r = run_with_env(as_reader, "search --quiet --k 3 --db " + db + " --queries " + v);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(top_keys(r.out).size(), 200u);
  // Writing is refused by the directory, as one clear line that says why (not "locked").
  r = run_with_env(as_reader, "ingest --quiet --db " + db + " --input " + v);
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("Permission denied"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("is locked"), std::string::npos) << r.out;
  EXPECT_EQ(snapshot(db), before);
  ASSERT_EQ(::system(("chmod -R u+w " + dir.path()).c_str()), 0);
}

TEST(CliDatabase, ReopeningDoesNotGrowTheDirectory) {
  TempDir dir;
  const std::string db = dir.sub("db"), v = dir.sub("v.npy");
  write_f32(v, random_rows(100, 16, 2), 16);
  ASSERT_EQ(run("ingest --quiet --db " + db + " --input " + v).rc, 0);
  std::size_t files_after_first = 0;
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(run("ingest --quiet --db " + db + " --input " + v).rc, 0);
    ASSERT_EQ(run("stats --db " + db).rc, 0);
    const auto n = snapshot(db).size();
    if (i == 0) files_after_first = n;
    EXPECT_LE(n, files_after_first + 4) << "after " << i + 2 << " ingests";
  }
}

// 50k vectors in one table (compacted); `damage` flips one byte of it.
struct DamagedDatabase {
  static constexpr std::size_t kRows = 50000, kDim = 16;
  TempDir dir;
  std::string db = dir.sub("db");
  std::vector<float> rows = random_rows(kRows, kDim, 3);
  DamagedDatabase() {
    write_f32(dir.sub("v.npy"), rows, kDim);
    EXPECT_EQ(run("ingest --quiet --db " + db + " --input " + dir.sub("v.npy")).rc, 0);
    EmbeddingCache cache(database_options(db, kDim));
    cache.compact();  // the vectors leave the log for a table
  }
  void damage(double at) {
    const std::string table = biggest_table(db);
    ASSERT_FALSE(table.empty());
    flip_byte(table, static_cast<std::uintmax_t>(double(fs::file_size(table)) * at));
  }
  // After a repair: how many of the original rows are stored, each with its exact value; nothing
  // else is stored.
  std::size_t intact() {
    EmbeddingCache cache(database_options(db, kDim));
    std::size_t same = 0, other = 0;
    cache.scan([&](std::span<const std::string> keys, auto, MatrixView values) {
      for (std::size_t i = 0; i < keys.size(); ++i) {
        const std::size_t row = std::stoul(keys[i].substr(2));
        const bool equal = std::equal(values.row(i), values.row(i) + kDim,
                                      rows.begin() + std::ptrdiff_t(row * kDim));
        (equal ? same : other) += 1;
      }
    });
    EXPECT_EQ(other, 0u);
    return same;
  }
};

void expect_corruption_message(const Result& r) {
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("is corrupt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(".sst offset "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hetcache repair --db"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("locked"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("not a hetcache database"), std::string::npos) << r.out;
}

// A flipped byte in a data block: reads report corruption; repair keeps every other vector.
TEST(CliDatabase, ADamagedDataBlockIsCorruptionAndRepairKeepsEveryOtherVector) {
  DamagedDatabase d;
  d.damage(0.5);
  expect_corruption_message(run("stats --db " + d.db));
  expect_corruption_message(
      run("search --quiet --db " + d.db + " --queries " + d.dir.sub("v.npy")));
  const Result r = run("repair --db " + d.db);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("set aside  1 table file"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("salvaged   49999 vectors"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("lost       1 entries"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("now        49999 vectors"), std::string::npos) << r.out;
  EXPECT_EQ(d.intact(), DamagedDatabase::kRows - 1);
  const Result stats = run("stats --db " + d.db);
  EXPECT_NE(stats.out.find("vectors    49999\nexpired    0\ncorrupt    0"), std::string::npos)
      << stats.out;
}

// A flipped byte in the table's index: the database does not open; every command says corrupt
// (ingest used to say "locked": the text "block checksum" holds "lock"); repair reports the
// table's vectors lost rather than inventing any, and leaves a database that works.
TEST(CliDatabase, ADamagedIndexIsCorruptionForEveryCommand) {
  DamagedDatabase d;
  const std::string table = biggest_table(d.db);
  d.damage(1.0 - 3000.0 / double(fs::file_size(table)));  // inside the index block at the end
  expect_corruption_message(run("stats --db " + d.db));
  expect_corruption_message(run("ingest --quiet --db " + d.db + " --input " + d.dir.sub("v.npy")));
  Result r = run("repair --db " + d.db);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("unreadable"), std::string::npos) << r.out;
  EXPECT_EQ(d.intact(), 0u);
  r = run("ingest --quiet --db " + d.db + " --input " + d.dir.sub("v.npy"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(d.intact(), DamagedDatabase::kRows);
}

TEST(CliDatabase, RepairOfAHealthyDatabaseChangesNoVector) {
  DamagedDatabase d;
  const Result r = run("repair --db " + d.db);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("now        50000 vectors"), std::string::npos) << r.out;
  EXPECT_EQ(d.intact(), DamagedDatabase::kRows);
  const Result missing = run("repair --db " + d.dir.sub("nothing"));
  EXPECT_EQ(missing.rc, 1);
  EXPECT_NE(missing.out.find("holds no database to repair"), std::string::npos) << missing.out;
}

TEST(CliDatabase, VersionAndGpuOnlySayWhatThisMachineHas) {
  Result r = run("--version");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find(std::string("hetcache ") + version()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(built_with_cuda() ? "CUDA: built" : "CUDA: not built"), std::string::npos);
  EXPECT_NE(r.out.find("this CPU runs: scalar"), std::string::npos) << r.out;
  TempDir dir;
  write_f32(dir.sub("v.npy"), random_rows(50, 8, 4), 8);
  ASSERT_EQ(run("ingest --quiet --db " + dir.sub("db") + " --input " + dir.sub("v.npy")).rc, 0);
  const std::string search = "search --quiet --db " + dir.sub("db") + " --queries " +
                             dir.sub("v.npy") + " --strategy gpu-only";
  if (Scheduler().gpu_available()) {
    // A GPU here: gpu-only runs on it, and each query (a stored vector) finds itself first.
    r = run(search);
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("on gpu"), std::string::npos) << r.out;
    for (int q = 0; q < 50; ++q) {
      const std::string i = std::to_string(q);
      EXPECT_NE(r.out.find("{\"query\":" + i + ",\"hits\":[{\"key\":\"v:" + i + "\""),
                std::string::npos)
          << "query " << q << "\n"
          << r.out;
    }
    return;
  }
  r = run(search);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("--strategy gpu-only: no GPU tier here"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--allow-fallback"), std::string::npos) << r.out;
  r = run(search + " --allow-fallback");
  EXPECT_EQ(r.rc, 0) << r.out;
}

}  // namespace
}  // namespace hetcache::test
