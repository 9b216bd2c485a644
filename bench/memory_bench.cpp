// hetcache_memory_bench: the memory store at scale, through the public API. Fills a memory-only
// EmbeddingCache with N random vectors (d = 768 by default), then times get_batch of K random keys
// on the calling thread (Tier::Sequential), R rounds; prints the median and the 10th/90th
// percentile rates in vectors/s and the process's peak RSS against the payload.
//   hetcache_memory_bench [--n N] [--dim D] [--batch K] [--rounds R]
#include <hetcache/hetcache.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "bench_data.hpp"
#include "machine_limits.hpp"

using hetcache::bench::parse_size;

int main(int argc, char** argv) {
  std::size_t n = 1'000'000, dim = 768, batch = 1000, rounds = 200;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--n" && has_value) {
      n = parse_size("hetcache_memory_bench", "--n", argv[++i], 1, 100'000'000);
    } else if (a == "--dim" && has_value) {
      dim = parse_size("hetcache_memory_bench", "--dim", argv[++i], 1, 8192);
    } else if (a == "--batch" && has_value) {
      batch = parse_size("hetcache_memory_bench", "--batch", argv[++i], 1, 1'000'000);
    } else if (a == "--rounds" && has_value) {
      rounds = parse_size("hetcache_memory_bench", "--rounds", argv[++i], 1, 100'000);
    } else {
      std::fprintf(stderr,
                   "usage: hetcache_memory_bench [--n N] [--dim D] [--batch K] [--rounds R]\n");
      return 2;
    }
  }
  hetcache::CacheOptions options;
  options.dim = dim;
  options.max_bytes = n * (dim * sizeof(float) + 256) + (std::size_t{64} << 20);
  hetcache::EmbeddingCache cache(options);
  std::vector<std::string> keys;
  keys.reserve(n);
  for (std::size_t i = 0; i < n; ++i) keys.push_back("doc:" + std::to_string(i));
  constexpr std::size_t kFill = 10'000;
  const hetcache::Matrix values = hetcache::bench::random_matrix(kFill, dim, 7, 2);
  std::fprintf(stderr, "filling %zu vectors of %zu floats...\n", n, dim);
  for (std::size_t first = 0; first < n; first += kFill) {
    const std::size_t count = std::min(kFill, n - first);
    cache.put_batch(std::span<const std::string>(keys.data() + first, count),
                    values.view().slice(0, count));
  }
  std::mt19937_64 rng(11);
  std::vector<std::string> wanted(batch);
  hetcache::Matrix out(batch, dim);
  std::vector<double> rates;
  for (std::size_t r = 0; r < rounds; ++r) {
    for (auto& key : wanted) key = keys[rng() % n];
    const auto start = std::chrono::steady_clock::now();
    const auto found = cache.get_batch(wanted, out.mutable_view(), hetcache::Tier::Sequential);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (std::count(found.begin(), found.end(), 1) != static_cast<long>(batch)) {
      std::fprintf(stderr, "a key the cache was given is missing\n");
      return 1;
    }
    rates.push_back(static_cast<double>(batch) / s);
  }
  std::sort(rates.begin(), rates.end());
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  const double payload = static_cast<double>(n) * static_cast<double>(dim) * sizeof(float);
  std::printf("%s | N = %zu, d = %zu | get_batch of %zu random keys, one thread: median %.0f "
              "vectors/s (p10 %.0f, p90 %.0f) | peak RSS %.0f MiB = %.2fx the %.0f MiB of vectors\n",
              hetcache::bench::cpu_model().c_str(), n, dim, batch, rates[rates.size() / 2],
              rates[rates.size() / 10], rates[rates.size() * 9 / 10],
              static_cast<double>(usage.ru_maxrss) / 1024.0,
              static_cast<double>(usage.ru_maxrss) * 1024.0 / payload, payload / (1 << 20));
  return 0;
}
