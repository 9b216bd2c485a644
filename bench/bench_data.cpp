#include "bench_data.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "machine_limits.hpp"

namespace hetcache::bench {

Matrix random_matrix(std::size_t rows, std::size_t dim, std::uint64_t seed, std::size_t threads) {
  Matrix m(rows, dim);
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (std::size_t r = t; r < rows; r += threads) {
        std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + r;
        for (std::size_t c = 0; c < dim; ++c) {
          x += 0x9E3779B97F4A7C15ull;
          std::uint64_t z = x;
          z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
          z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
          z ^= z >> 31;
          m(r, c) = static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  return m;
}

std::vector<double> interleaved_medians(int min_rounds,
                                        const std::vector<std::function<void()>>& systems) {
  for (const auto& fn : systems) fn();
  std::vector<std::vector<double>> times(systems.size());
  std::vector<double> totals(systems.size(), 0.0);
  for (int round = 0;; ++round) {
    const bool short_totals = *std::min_element(totals.begin(), totals.end()) < 0.3;
    if (round >= min_rounds && (!short_totals || round >= 15)) break;
    for (std::size_t i = 0; i < systems.size(); ++i) {
      const auto start = std::chrono::steady_clock::now();
      systems[i]();
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      times[i].push_back(s);
      totals[i] += s;
    }
  }
  std::vector<double> medians;
  for (auto& t : times) medians.push_back(median(std::move(t)));
  return medians;
}

std::size_t parse_size(const char* program, const char* flag, const char* text, std::size_t lo,
                       std::size_t hi) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < static_cast<long long>(lo) ||
      v > static_cast<long long>(hi)) {
    std::fprintf(stderr, "%s: %s must be an integer in [%zu, %zu], got '%s'\n", program, flag, lo,
                 hi, text);
    std::exit(2);
  }
  return static_cast<std::size_t>(v);
}

bool write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream file(tmp);
    file << text;
    if (!file.flush()) {
      std::fprintf(stderr, "could not write %s\n", tmp.c_str());
      return false;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::perror(("could not rename " + tmp + " to " + path).c_str());
    return false;
  }
  return true;
}

int print_report(const std::string& report, const std::string& out_path) {
  std::fputs(report.c_str(), stdout);
  if (out_path.empty()) return 0;
  return write_file(out_path, report) ? 0 : 1;
}

int guarded_main(const char* program, int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 1;
  }
}

}  // namespace hetcache::bench
