// Helpers for the cache tests: temporary directories and deterministic vectors per (key, version).
#pragma once

#include <hetcache/hetcache.hpp>
#include <hetcache/resources.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/resources.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace hetcache::test {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base ? base : "/tmp") + "/hetcache-test-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// f must throw hetcache::Error with this code and a message containing `needle` (the option or
// value it names).
inline void expect_error(ErrorCode code, const std::string& needle,
                         const std::function<void()>& f) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// The biggest table file (*.sst) of a RocksDB directory; "" when it has none.
inline std::string biggest_table(const std::string& dir) {
  std::string table;
  std::uintmax_t size = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".sst" && e.file_size() > size) {
      size = e.file_size();
      table = e.path().string();
    }
  return table;
}

// Flips one bit of the byte at `offset` of a file, as a failing disk or a cosmic ray might.
inline void flip_byte(const std::string& file, std::uintmax_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x40);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

// The vector a test writes for (key, version): values in [-1, 1), never all zero, different for
// every key and version, so a vector read back identifies exactly what was written.
inline std::vector<float> vector_for(std::string_view key, std::uint64_t version, std::size_t dim) {
  std::vector<float> v(dim);
  std::uint64_t state =
      XXH3_64bits_withSeed(key.data(), key.size(), version * 0x9E3779B97F4A7C15ull + 1);
  for (std::size_t j = 0; j < dim; ++j) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v[j] = static_cast<float>(static_cast<double>(state >> 40) / double(1ull << 24) * 2.0 - 1.0);
    if (v[j] == 0.0f) v[j] = 0.5f;
  }
  return v;
}

inline Matrix matrix_for(const std::vector<std::string>& keys, std::uint64_t version,
                         std::size_t dim) {
  Matrix m(keys.size(), dim);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto v = vector_for(keys[i], version, dim);
    std::copy(v.begin(), v.end(), m.row(i));
  }
  return m;
}

// Keys per batch of hetcache_crash_writer in bulk mode: at 2 threads, two table files of vectors
// and one of row ids per batch.
inline constexpr std::size_t kBulkBatch = 10000;

inline std::vector<std::string> make_keys(const std::string& prefix, std::size_t n,
                                          std::size_t first = 0) {
  std::vector<std::string> keys;
  keys.reserve(n);
  for (std::size_t i = first; i < first + n; ++i) keys.push_back(prefix + std::to_string(i));
  return keys;
}

// Every live key of a durable cache with its row id, as scan hands them over.
inline std::map<std::string, std::int64_t> scanned_ids(EmbeddingCache& cache) {
  std::map<std::string, std::int64_t> ids;
  cache.scan(
      [&](std::span<const std::string> keys, std::span<const std::int64_t> row_ids, MatrixView) {
        for (std::size_t i = 0; i < keys.size(); ++i) ids[keys[i]] = row_ids[i];
      });
  return ids;
}

inline bool row_equals(const float* row, const std::vector<float>& v) {
  return std::equal(v.begin(), v.end(), row, [](float a, float b) {
    return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
  });
}

// Every key is in the cache and holds vector_for(key, version, dim), read in one get_batch.
inline void expect_all_stored(EmbeddingCache& cache, const std::vector<std::string>& keys,
                              std::uint64_t version, std::size_t dim) {
  Matrix out(keys.size(), dim);
  const auto mask = cache.get_batch(keys, out.mutable_view());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(mask[i], 1) << keys[i];
    ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], version, dim))) << keys[i];
  }
}

// The cache's expected search result over `values` (row i holds keys[i]): the engine's scores for
// every candidate, ranked better score first with equal scores by key (the cache's tie rule; the
// engine breaks ties by row id instead), cut to k. Data here has no NaN.
inline std::vector<std::vector<KeyHit>> expected_key_hits(const SimilarityEngine& engine,
                                                          MatrixView queries, MatrixView values,
                                                          const std::vector<std::string>& keys,
                                                          std::size_t k, Metric metric) {
  const Hits all = engine.search(queries, values, values.rows(), metric);
  std::vector<std::vector<KeyHit>> expected(queries.rows());
  for (std::size_t q = 0; q < queries.rows(); ++q) {
    for (std::size_t h = 0; h < all.k(); ++h) {
      expected[q].push_back({keys[static_cast<std::size_t>(all.ids(q)[h])], all.scores(q)[h]});
    }
    std::stable_sort(expected[q].begin(), expected[q].end(),
                     [metric](const KeyHit& a, const KeyHit& b) {
                       if (a.score != b.score)
                         return metric == Metric::L2 ? a.score < b.score : a.score > b.score;
                       return a.key < b.key;
                     });
    if (expected[q].size() > k) expected[q].resize(k);
  }
  return expected;
}

// Starts one fiber per matrix in outs on runtime, each reading every key with get_batch_async
// into its matrix, then expects each to finish within `limit` having found every key. The callers
// are fibers themselves: on a one-thread pool, a wait anywhere that blocked the thread instead of
// suspending the fiber would stop them all.
inline void read_from_fiber_callers(Resources& runtime, EmbeddingCache& cache,
                                    const std::vector<std::string>& keys, std::vector<Matrix>& outs,
                                    std::chrono::seconds limit) {
  std::vector<Future<std::size_t>> callers;
  for (Matrix& out : outs) {
    callers.push_back(runtime.submit([&cache, &keys, &out] {
      const auto mask = cache.get_batch_async(keys, out.mutable_view()).get();
      return static_cast<std::size_t>(std::count(mask.begin(), mask.end(), 1));
    }));
  }
  for (auto& caller : callers) {
    ASSERT_TRUE(caller.wait_for(limit)) << "a fiber blocked its thread";
    EXPECT_EQ(caller.get(), keys.size());
  }
}

}  // namespace hetcache::test
