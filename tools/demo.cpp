// hetcache_demo: a real batched top-k search on random data, on the tier the engine picks and on
// the Sequential tier for comparison; prints throughput and checks the top hit by brute force.
// Usage: hetcache_demo [--candidates N] [--dim D] [--queries Q] [--k K] [--metric dot|cosine|l2]
#include <hetcache/hetcache.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

hetcache::Matrix random_matrix(std::size_t rows, std::size_t dim, std::uint64_t seed) {
  hetcache::Matrix m(rows, dim);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < dim; ++c) m(r, c) = uniform(rng);
  }
  return m;
}

template <class Fn>
double median_seconds(int runs, Fn&& fn) {
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::size_t parse_size(const char* flag, const char* text) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0' || v == 0) {
    std::fprintf(stderr, "hetcache_demo: %s needs a positive integer, got '%s'\n", flag, text);
    std::exit(2);
  }
  return static_cast<std::size_t>(v);
}

}  // namespace

int main(int argc, char** argv) try {
  std::size_t n = 200000, dim = 768, nq = 64, k = 10;
  hetcache::Metric metric = hetcache::Metric::Cosine;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("usage: hetcache_demo [--candidates N] [--dim D] [--queries Q] [--k K] "
                  "[--metric dot|cosine|l2]\n");
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "hetcache_demo: %s needs a value (see --help)\n", arg.c_str());
      return 2;
    }
    const char* value = argv[++i];
    if (arg == "--candidates") n = parse_size("--candidates", value);
    else if (arg == "--dim") dim = parse_size("--dim", value);
    else if (arg == "--queries") nq = parse_size("--queries", value);
    else if (arg == "--k") k = parse_size("--k", value);
    else if (arg == "--metric") metric = hetcache::parse_metric(value);
    else {
      std::fprintf(stderr, "hetcache_demo: unknown option %s (see --help)\n", arg.c_str());
      return 2;
    }
  }

  hetcache::SimilarityEngine engine;
  std::printf("hetcache %s demo: batched top-k search on random data\n", hetcache::version());
  std::printf("  machine     %s, %zu threads, ISA %s\n", cpu_model().c_str(), engine.cpu_threads(),
              std::string(hetcache::to_string(engine.isa())).c_str());
  const hetcache::Matrix candidates = random_matrix(n, dim, 1);
  const hetcache::Matrix queries = random_matrix(nq, dim, 2);
  std::printf("  problem     %zu candidates x %zu dims (%.0f MiB), %zu queries, k = %zu, %s\n", n,
              dim, static_cast<double>(n * dim * 4) / (1 << 20), nq, k,
              std::string(hetcache::to_string(metric)).c_str());

  const hetcache::Tier chosen = engine.default_tier(nq, n, dim);
  const double flops = 2.0 * static_cast<double>(nq) * static_cast<double>(n) * static_cast<double>(dim);
  hetcache::Hits hits;
  for (hetcache::Tier tier : {chosen, hetcache::Tier::Sequential}) {
    const double s = median_seconds(3, [&] { hits = engine.search(queries, candidates, k, metric, tier); });
    std::printf("  tier %-10s %8.2f ms  %10.0f queries/s  %7.1f GFLOP/s  %6.1f GB/s of candidates%s\n",
                std::string(hetcache::to_string(tier)).c_str(), s * 1e3,
                static_cast<double>(nq) / s, flops / s * 1e-9,
                static_cast<double>(n * dim * 4) / s * 1e-9,
                tier == chosen ? "  (chosen for this size)" : "");
    if (chosen == hetcache::Tier::Sequential) break;
  }

  // Brute-force check of query 0's best hit, in double precision.
  auto score = [&](std::size_t c) {
    double dot = 0, qq = 0, cc = 0;
    for (std::size_t j = 0; j < dim; ++j) {
      dot += double(queries(0, j)) * candidates(c, j);
      qq += double(queries(0, j)) * queries(0, j);
      cc += double(candidates(c, j)) * candidates(c, j);
    }
    if (metric == hetcache::Metric::Dot) return dot;
    if (metric == hetcache::Metric::Cosine) return dot / std::sqrt(qq * cc);
    return -(qq + cc - 2 * dot);
  };
  std::size_t best = 0;
  for (std::size_t c = 1; c < n; ++c) best = score(c) > score(best) ? c : best;
  const bool ok = hits.ids(0)[0] == static_cast<std::int64_t>(best);
  std::printf("  check       query 0 best hit id %lld, brute force (float64) says %zu: %s\n",
              static_cast<long long>(hits.ids(0)[0]), best, ok ? "match" : "MISMATCH");
  std::printf("  query 0     ");
  for (std::size_t i = 0; i < std::min<std::size_t>(hits.k(), 5); ++i) {
    std::printf("(%lld, %.4f) ", static_cast<long long>(hits.ids(0)[i]), hits.scores(0)[i]);
  }
  std::printf("\n");
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "hetcache_demo: %s\n", e.what());
  return 1;
}
