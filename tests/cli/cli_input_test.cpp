// The command checks everything it is given before any work or any write: numeric options (range,
// sign, overflow), .npy headers parsed whole, every row finite with a bounded norm, keys files
// without duplicates, TTLs without overflow, scans bounded in bytes.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli_run.hpp"

namespace hetcache::test {
namespace {

// One error line naming `says`, exit status 1.
void expect_error(const std::string& args, const std::string& says) {
  const Result r = run(args);
  EXPECT_EQ(r.rc, 1) << args << "\n" << r.out;
  EXPECT_EQ(r.out.rfind("hetcache: error: ", 0), 0u) << args << "\n" << r.out;
  EXPECT_NE(r.out.find(says), std::string::npos) << args << "\n" << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << args << "\n" << r.out;
}

std::size_t stored_vectors(const std::string& db) {
  const Result r = run("stats --db " + db);
  const auto at = r.out.find("vectors    ");
  return at == std::string::npos ? std::size_t(-1) : std::stoul(r.out.substr(at + 11));
}

TEST(CliInput, NumericOptionsAreWholeNumbersInTheirRange) {
  TempDir dir;
  const std::string db = dir.sub("db"), q = dir.sub("q.npy");
  write_f32(q, random_rows(3, 8, 1), 8);
  ASSERT_EQ(run("ingest --quiet --db " + db + " --input " + q).rc, 0);
  for (const char* k : {"-3", "-1", "0", "99999999999999999999", "abc", "1.5", "100001"}) {
    expect_error(
        "search --db " + db + " --queries " + q + " --k " + k + " --out " + dir.sub("x.npy"),
        std::string("--k must be a whole number from 1 to 100000, got '") + k + "'");
    EXPECT_FALSE(std::filesystem::exists(dir.sub("x.npy"))) << k;
  }
  for (const char* ttl : {"-1", "0", "99999999999999999999", "18446744073709552"})
    expect_error("ingest --db " + db + " --input " + q + " --ttl " + ttl,
                 "--ttl must be a whole number from 1 to 3153600000");
  expect_error("ingest --db " + db + " --input " + q + " --batch 0", "--batch must be");
  expect_error("plan --items -1", "--items must be a whole number from 1");
  expect_error("plan --queries -3", "--queries must be");
  expect_error("bench --cpu-sizes 100,-1", "--cpu-sizes must be a whole number from 1 to 1000000");
  expect_error("demo --runs 0", "--runs must be a whole number from 1 to 1000");
  // An exponent is a whole number too.
  const Result r = run("ingest --quiet --db " + db + " --input " + q + " --batch 1e3");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(stored_vectors(db), 3u);
}

TEST(CliInput, NpyHeadersAreParsedWhole) {
  TempDir dir;
  const std::string db = dir.sub("db");
  const auto values = random_rows(100 * 10, 64, 2);
  const auto header = [](const std::string& shape, const std::string& extra = "") {
    return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", " + extra + "}";
  };
  // 3-D: refused, not read as 100 vectors of dimension 10.
  write_npy_with_header(dir.sub("cube.npy"), header("(100, 10, 64)"), values.data(),
                        values.size() * 4);
  expect_error("ingest --db " + db + " --input " + dir.sub("cube.npy"),
               "shape (100, 10, 64) has 3 dimensions; expected (rows, dim)");
  // A repeated or unknown key, a non-tuple shape.
  write_npy_with_header(dir.sub("twice.npy"), header("(10, 64)", "'shape': (100, 64), "),
                        values.data(), 100 * 64 * 4);
  expect_error("ingest --db " + db + " --input " + dir.sub("twice.npy"),
               "the key 'shape' appears twice");
  write_npy_with_header(dir.sub("extra.npy"), header("(10, 64)", "'x': 1, "), values.data(),
                        10 * 64 * 4);
  expect_error("ingest --db " + db + " --input " + dir.sub("extra.npy"), "unknown key 'x'");
  write_npy_with_header(dir.sub("int.npy"), header("(64)"), values.data(), 64 * 4);
  expect_error("ingest --db " + db + " --input " + dir.sub("int.npy"), "is not a tuple");
  // A shape whose byte count overflows 64 bits: refused before anything is written.
  write_npy_with_header(dir.sub("huge.npy"), header("(288230376151711744, 64)"), values.data(),
                        1000 * 64 * 4);
  expect_error("ingest --db " + db + " --input " + dir.sub("huge.npy"), "truncated");
  // A 4 GiB header length (format 2.0): refused at once, nothing allocated.
  std::string v2 = "\x93NUMPY\x02";
  v2 += std::string("\0\xff\xff\xff\xff", 5);
  std::ofstream(dir.sub("len.npy"), std::ios::binary) << v2;
  expect_error("ingest --db " + db + " --input " + dir.sub("len.npy"),
               "claims 4294967295 bytes, more than NumPy's limit of 10000");
  // None of these created the database.
  EXPECT_FALSE(std::filesystem::exists(db));

  // Big-endian float32 and float64 read as the same values; a 1-D array is one query.
  const auto rows = random_rows(5, 8, 3);
  std::vector<float> swapped(rows);
  std::vector<double> wide(rows.begin(), rows.end());
  for (float& x : swapped) {
    auto* b = reinterpret_cast<unsigned char*>(&x);
    std::reverse(b, b + 4);
  }
  write_npy(dir.sub("be.npy"), ">f4", swapped.data(), swapped.size() * 4, 5, 8);
  write_npy(dir.sub("wide.npy"), "<f8", wide.data(), wide.size() * 8, 5, 8);
  std::ofstream(dir.sub("keys.txt")) << "a\nb\nc\nd\ne\n";
  Result r = run("ingest --quiet --db " + db + " --input " + dir.sub("be.npy"));
  ASSERT_EQ(r.rc, 0) << r.out;
  r = run("ingest --quiet --db " + db + " --input " + dir.sub("wide.npy") + " --keys " +
          dir.sub("keys.txt"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("is float64; stored as float32"), std::string::npos) << r.out;
  {
    EmbeddingCache cache(database_options(db, 8));
    for (std::size_t i = 0; i < 5; ++i) {
      const auto be = cache.get("be:" + std::to_string(i));
      const auto w = cache.get(std::string(1, char('a' + i)));
      ASSERT_TRUE(be && w);
      for (std::size_t c = 0; c < 8; ++c) {
        EXPECT_EQ((*be)[c], rows[i * 8 + c]);
        EXPECT_EQ((*w)[c], rows[i * 8 + c]);
      }
    }
  }
  write_npy_with_header(dir.sub("one.npy"), header("(8,)"), rows.data() + 16, 8 * 4);
  r = run("search --db " + db + " --queries " + dir.sub("one.npy") + " --k 2");
  ASSERT_EQ(r.rc, 0) << r.out;
  const auto keys = top_keys(r.out);
  ASSERT_EQ(keys.size(), 1u) << r.out;
  EXPECT_TRUE(keys[0] == "be:2" || keys[0] == "c") << r.out;
}

TEST(CliInput, NonFiniteOrHugeRowsAreRefusedByRowAndNothingIsWritten) {
  TempDir dir;
  const std::string db = dir.sub("db");
  auto rows = random_rows(50, 8, 4);
  rows[7 * 8 + 3] = std::numeric_limits<float>::quiet_NaN();
  write_f32(dir.sub("nan.npy"), rows, 8);
  expect_error("ingest --db " + db + " --input " + dir.sub("nan.npy"),
               "row 7, column 3 is nan (vectors must be finite)");
  EXPECT_FALSE(std::filesystem::exists(db));  // the NaN is found before anything is written
  rows[7 * 8 + 3] = 0.5f;
  rows[40 * 8] = 3e38f;  // finite, but its squared distances overflow float32
  write_f32(dir.sub("big.npy"), rows, 8);
  expect_error("ingest --db " + db + " --input " + dir.sub("big.npy"), "row 40 has norm 3e+38");
  std::ofstream(dir.sub("inf.csv")) << "1,2,3,4,5,6,7,8\n\n1,2,inf,4,5,6,7,8\n";
  expect_error("ingest --db " + db + " --input " + dir.sub("inf.csv"), "line 3, column 2 is inf");
  std::ofstream(dir.sub("range.csv")) << "1,2,3,4,5,6,7,1e39\n";
  expect_error("ingest --db " + db + " --input " + dir.sub("range.csv"),
               "'1e39' is outside float32's range");
  std::vector<double> wide(8, 1.0);
  wide[5] = 1e300;
  write_npy(dir.sub("wide.npy"), "<f8", wide.data(), 64, 1, 8);
  expect_error("ingest --db " + db + " --input " + dir.sub("wide.npy"),
               "row 0, column 5: 1e+300 is outside float32's range");
  EXPECT_FALSE(std::filesystem::exists(db));
  // Queries alike.
  write_f32(dir.sub("ok.npy"), random_rows(4, 8, 5), 8);
  ASSERT_EQ(run("ingest --quiet --db " + db + " --input " + dir.sub("ok.npy")).rc, 0);
  auto q = random_rows(3, 8, 6);
  q[2 * 8 + 1] = -std::numeric_limits<float>::infinity();
  write_f32(dir.sub("q.npy"), q, 8);
  expect_error("search --db " + db + " --queries " + dir.sub("q.npy"), "row 2, column 1 is -inf");
}

TEST(CliInput, AKeysFileWithARepeatedOrEmptyKeyIsRefused) {
  TempDir dir;
  const std::string db = dir.sub("db");
  write_f32(dir.sub("v.npy"), random_rows(1000, 8, 7), 8);
  {
    std::ofstream keys(dir.sub("dup.txt"));
    for (int i = 0; i < 1000; ++i) keys << "key" << (i == 700 ? 3 : i) << "\n";
  }
  expect_error(
      "ingest --db " + db + " --input " + dir.sub("v.npy") + " --keys " + dir.sub("dup.txt"),
      "line 701 repeats the key 'key3' of line 4");
  {
    std::ofstream keys(dir.sub("empty.txt"));
    for (int i = 0; i < 1000; ++i) keys << (i == 10 ? "" : "k" + std::to_string(i)) << "\n";
  }
  expect_error(
      "ingest --db " + db + " --input " + dir.sub("v.npy") + " --keys " + dir.sub("empty.txt"),
      "line 11 is empty");
  EXPECT_FALSE(std::filesystem::exists(db));
}

// --ttl reaches the stored values: present at once, expired after it.
TEST(CliInput, TtlExpiresTheVectors) {
  TempDir dir;
  const std::string db = dir.sub("db");
  write_f32(dir.sub("v.npy"), random_rows(20, 8, 8), 8);
  ASSERT_EQ(run("ingest --quiet --ttl 2 --db " + db + " --input " + dir.sub("v.npy")).rc, 0);
  Result r = run("stats --db " + db);
  EXPECT_NE(r.out.find("vectors    20\nexpired    0"), std::string::npos) << r.out;
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  r = run("stats --db " + db);
  EXPECT_NE(r.out.find("vectors    0\nexpired    20"), std::string::npos) << r.out;
}

// Peak memory of one run of the command (a child of its own, so earlier children do not count).
std::size_t peak_rss_mib(const std::string& args) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string command = std::string(HETCACHE_CLI) + " " + args + " >/dev/null 2>&1";
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << args;
  return static_cast<std::size_t>(usage.ru_maxrss) / 1024;
}

// A wide vector does not make a scan batch of gigabytes: 65,536 rows of 20,000 floats were 5.2 GB
// (the limit leaves room for a sanitizer build's own overhead).
TEST(CliInput, WideVectorsAreScannedInBatchesBoundedInBytes) {
  TempDir dir;
  const std::string db = dir.sub("db");
  write_f32(dir.sub("w.npy"), random_rows(10, 20000, 9), 20000);
  ASSERT_EQ(run("ingest --quiet --db " + db + " --input " + dir.sub("w.npy")).rc, 0);
  EXPECT_LT(peak_rss_mib("stats --db " + db), 1024u);
  EXPECT_LT(peak_rss_mib("search --db " + db + " --queries " + dir.sub("w.npy")), 1024u);
}

}  // namespace
}  // namespace hetcache::test
