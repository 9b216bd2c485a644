// Helpers for the command's tests: run the real binary, write input files byte by byte, read
// back the .npy hits it writes.
#pragma once

#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "cache/cache_test_util.hpp"

namespace hetcache::test {

struct Result {
  int rc = -1;
  std::string out;  // stdout and stderr together
};

// env: assignments put before the command ("NAME=value ...").
inline Result run_with_env(const std::string& env, const std::string& args) {
  const std::string command = env + " " + std::string(HETCACHE_CLI) + " " + args + " 2>&1";
  Result r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buf{};
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) r.out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  // HETCACHE_TEST_COMMAND_LOG=FILE: one line per run, "<exit status>\t<arguments>", for tallying
  // what the suite tried (bench/results/reliability-*.md).
  if (const char* log = std::getenv("HETCACHE_TEST_COMMAND_LOG"))
    std::ofstream(log, std::ios::app) << r.rc << '\t' << args << '\n';
  return r;
}

inline Result run(const std::string& args) { return run_with_env("", args); }

// The command with its standard output sent to `target` (a file or device); out holds stderr.
inline Result run_stdout_to(const std::string& args, const std::string& target) {
  return run_with_env("", args + " 2>&1 >" + target + " #");
}

inline std::vector<float> random_rows(std::size_t rows, std::size_t dim, std::uint64_t seed) {
  std::vector<float> v(rows * dim);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (auto& x : v) x = u(rng);
  return v;
}

inline std::uint16_t to_half(
    float f) {  // exact for the values used (multiples of 1/1024 in [-1, 1])
  std::uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const std::uint32_t sign = (bits >> 16) & 0x8000u;
  const int exponent = int((bits >> 23) & 0xFF) - 127 + 15;
  if (exponent <= 0) return static_cast<std::uint16_t>(sign);
  return static_cast<std::uint16_t>(sign | (exponent << 10) | ((bits >> 13) & 0x3FFu));
}

// A .npy file with the given header dict text (padded as NumPy pads it) and data; version 1
// stores the header length in 2 bytes, versions 2 and 3 in 4. cut: bytes dropped from the end.
inline void write_npy_with_header(const std::string& path, std::string header, const void* data,
                                  std::size_t bytes, std::size_t cut = 0, int version = 1) {
  const std::size_t prefix = version == 1 ? 10 : 12;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::string file = "\x93NUMPY";
  file.push_back(static_cast<char>(version));
  file.push_back('\0');
  for (std::size_t i = 0; i < prefix - 8; ++i)
    file.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xFF));
  file += header;
  file.append(static_cast<const char*>(data), bytes);
  file.resize(file.size() - cut);
  std::ofstream(path, std::ios::binary) << file;
}

inline void write_npy(const std::string& path, const std::string& descr, const void* data,
                      std::size_t bytes, std::size_t rows, std::size_t dim, std::size_t cut = 0) {
  write_npy_with_header(path,
                        "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" +
                            std::to_string(rows) + ", " + std::to_string(dim) + "), }",
                        data, bytes, cut);
}

inline void write_f32(const std::string& path, const std::vector<float>& v, std::size_t dim,
                      std::size_t cut = 0) {
  write_npy(path, "<f4", v.data(), v.size() * 4, v.size() / dim, dim, cut);
}

// What the command opens for --db: a cache over the RocksDB database at path.
inline CacheOptions database_options(const std::string& path, std::size_t dim) {
  CacheOptions options;
  options.dim = dim;
  RocksDbOptions rocks;
  rocks.path = path;
  options.durable = rocks;
  return options;
}

// Top-1 key of each query line of `search` output.
inline std::vector<std::string> top_keys(const std::string& out) {
  std::vector<std::string> keys;
  std::size_t at = 0;
  while ((at = out.find("\"hits\":[{\"key\":\"", at)) != std::string::npos) {
    at += 16;
    keys.push_back(out.substr(at, out.find('"', at) - at));
  }
  return keys;
}

struct NpyHit {
  std::string key;
  float score;
  std::int64_t row = -1;
};

// A whole file's bytes ("" when it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// Reads what `search --out FILE.npy` writes: a (queries, k) structured array of key (|S<width>),
// row (<i8) and score (<f4), checking the header as NumPy would parse it.
inline std::vector<std::vector<NpyHit>> read_hits_npy(const std::string& path) {
  const std::string file = read_file(path);
  EXPECT_EQ(file.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const std::size_t header_len =
      static_cast<unsigned char>(file[8]) | (static_cast<unsigned char>(file[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  const std::string header = file.substr(10, header_len);
  const std::size_t width_at = header.find("[('key', '|S");
  if (width_at == std::string::npos) {
    ADD_FAILURE() << header;
    return {};
  }
  const std::size_t width = std::stoul(header.substr(width_at + 12));
  EXPECT_NE(header.find("'), ('row', '<i8'), ('score', '<f4')], 'fortran_order': False, "
                        "'shape': ("),
            std::string::npos)
      << header;
  const std::size_t shape_at = header.find("'shape': (") + 10;
  const std::size_t rows = std::stoul(header.substr(shape_at));
  const std::size_t k = std::stoul(header.substr(header.find(", ", shape_at) + 2));
  EXPECT_EQ(file.size(), 10 + header_len + rows * k * (width + 12)) << header;
  std::vector<std::vector<NpyHit>> hits(rows);
  const char* record = file.data() + 10 + header_len;
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < k; ++j, record += width + 12) {
      NpyHit hit{std::string(record, ::strnlen(record, width)), 0};
      std::memcpy(&hit.row, record + width, 8);
      std::memcpy(&hit.score, record + width + 8, 4);
      hits[i].push_back(hit);
    }
  }
  return hits;
}

}  // namespace hetcache::test
