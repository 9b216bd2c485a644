// The C++ side of bench/python_bench.py's overhead comparison: the same two calls the Python
// benchmark times through hetcache (a memory-store get_batch of 1000 random keys out of 100,000
// cached 768-d vectors, and a 16 x 100,000 x 768 top-10 search), timed here through the C++ API,
// the median of many calls each, printed as one JSON object -- or, with --serve, one call per
// line read from stdin ("get", "get-empty", "search" or "search-small"), its time in ms printed back, so the Python benchmark
// can alternate C++ and Python calls one by one.
//   hetcache_call_overhead_bench [--get-calls N] [--search-calls N] [--serve]
#include <hetcache/hetcache.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench_data.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kDim = 768, kEntries = 100'000, kBatch = 1000, kQueries = 16;

double median_ms(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int run(int argc, char** argv) {
  std::size_t get_calls = 300, search_calls = 21;
  bool serve = false;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--serve") == 0)
      serve = true;
    else if (std::strcmp(argv[i], "--get-calls") == 0 && has_value)
      get_calls = hetcache::bench::parse_size(argv[0], "--get-calls", argv[++i], 1, 100000);
    else if (std::strcmp(argv[i], "--search-calls") == 0 && has_value)
      search_calls = hetcache::bench::parse_size(argv[0], "--search-calls", argv[++i], 1, 10000);
    else {
      std::fprintf(stderr, "usage: %s [--get-calls N] [--search-calls N] [--serve]\n", argv[0]);
      return 2;
    }
  }
  const hetcache::Matrix rows = hetcache::bench::random_matrix(kEntries, kDim, 1, 2);
  std::vector<std::string> keys(kEntries);
  for (std::size_t i = 0; i < kEntries; ++i) keys[i] = "doc-" + std::to_string(i);

  hetcache::CacheOptions options;
  options.dim = kDim;
  options.max_bytes = std::size_t{1} << 30;
  hetcache::EmbeddingCache cache(options);
  cache.put_batch(keys, rows.view());
  std::mt19937_64 rng(2);
  std::vector<std::string> batch(kBatch);
  hetcache::Matrix out(kBatch, kDim);
  const hetcache::Matrix queries = hetcache::bench::random_matrix(kQueries, kDim, 3, 2);
  const hetcache::SimilarityEngine engine;
  const auto get_once = [&] {
    for (auto& k : batch) k = keys[rng() % kEntries];
    const auto start = Clock::now();
    (void)cache.get_batch(batch, out.mutable_view());
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  };
  // The same get_batch on an empty cache: every key misses at once, so what is left is the
  // call itself (the Python side's conversions, measured against this).
  hetcache::EmbeddingCache empty(options);
  const auto get_empty_once = [&] {
    for (auto& k : batch) k = keys[rng() % kEntries];
    const auto start = Clock::now();
    (void)empty.get_batch(batch, out.mutable_view());
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  };
  // A search over 16 candidates: the call alone, against which the Python side is measured.
  const auto search_small_once = [&] {
    const auto start = Clock::now();
    (void)engine.search(queries.view(), rows.view().slice(0, 16), 10);
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  };
  const auto search_once = [&] {
    const auto start = Clock::now();
    (void)engine.search(queries.view(), rows.view(), 10);
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  };
  if (serve) {
    std::printf("ready\n");
    std::fflush(stdout);
    char line[64];
    while (std::fgets(line, sizeof line, stdin) != nullptr) {
      if (std::strncmp(line, "get-empty", 9) == 0)
        std::printf("%.6f\n", get_empty_once());
      else if (std::strncmp(line, "get", 3) == 0)
        std::printf("%.6f\n", get_once());
      else if (std::strncmp(line, "search-small", 12) == 0)
        std::printf("%.6f\n", search_small_once());
      else if (std::strncmp(line, "search", 6) == 0)
        std::printf("%.6f\n", search_once());
      else
        break;
      std::fflush(stdout);
    }
    return 0;
  }
  (void)get_once();
  (void)search_once();
  std::vector<double> get_ms, search_ms;
  for (std::size_t c = 0; c < get_calls; ++c) get_ms.push_back(get_once());
  for (std::size_t c = 0; c < search_calls; ++c) search_ms.push_back(search_once());
  std::printf("{\"get_batch_ms\": %.6f, \"search_ms\": %.6f}\n", median_ms(get_ms),
              median_ms(search_ms));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return hetcache::bench::guarded_main("hetcache_call_overhead_bench", run, argc, argv);
}
