// hetcache_metric_bench: the price of the metric. One run, one random candidate set (N x d, f32,
// uniform in [-1, 1)), top-k of Q queries with Dot, Cosine and L2 through the public API: the
// engine on a plain view (norms computed during the scan), the engine on a CandidateSet (norms
// kept), and EmbeddingCache::search over the same vectors cached in its memory store (norms kept
// beside the rows). All on the Cpu tier, interleaved run by run with the machine's own time to read
// the candidate bytes once (medians of at least R rounds). Prints a markdown table.
//   hetcache_metric_bench [--n N] [--dim D] [--k K] [--runs R] [--out FILE]
#include <hetcache/hetcache.hpp>

#if __has_include(<hetcache/candidates.hpp>)
#define HETCACHE_BENCH_HAS_CANDIDATE_SET 1
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_data.hpp"
#include "machine_limits.hpp"

namespace {

using hetcache::Matrix;
using hetcache::MatrixView;
using hetcache::Metric;
using hetcache::Tier;

using hetcache::bench::interleaved_medians;
using hetcache::bench::parse_size;
using hetcache::bench::random_matrix;


}  // namespace

int main(int argc, char** argv) {
  std::size_t n = 1'000'000, dim = 768, k = 10, runs = 7;
  std::string out_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--n" && has_value) {
      n = parse_size("hetcache_metric_bench", "--n", argv[++i], 1, 20'000'000);
    } else if (a == "--dim" && has_value) {
      dim = parse_size("hetcache_metric_bench", "--dim", argv[++i], 1, 8192);
    } else if (a == "--k" && has_value) {
      k = parse_size("hetcache_metric_bench", "--k", argv[++i], 1, 1000);
    } else if (a == "--runs" && has_value) {
      runs = parse_size("hetcache_metric_bench", "--runs", argv[++i], 1, 100);
    } else if (a == "--out" && has_value) {
      out_path = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: hetcache_metric_bench [--n N] [--dim D] [--k K] [--runs R] [--out F]\n");
      return 2;
    }
  }
  const std::vector<std::size_t> nqs = {1, 16, 64};
  const Metric metrics[] = {Metric::Dot, Metric::Cosine, Metric::L2};

  hetcache::SimilarityEngine engine;
  const std::size_t threads = engine.cpu_threads();
  std::fprintf(stderr, "generating %zu x %zu candidates...\n", n, dim);
  const Matrix candidates = random_matrix(n, dim, 1000 + dim, threads);
  const Matrix all_queries = random_matrix(nqs.back(), dim, 2000 + dim, threads);
#if defined(HETCACHE_BENCH_HAS_CANDIDATE_SET)
  Matrix rows_for_set = candidates.clone();
  const auto set_start = std::chrono::steady_clock::now();
  const hetcache::CandidateSet set = engine.candidate_set(std::move(rows_for_set));
  const double set_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - set_start).count();
#endif

  std::fprintf(stderr, "filling the cache's memory store...\n");
  hetcache::CacheOptions options;
  options.dim = dim;
  options.max_bytes = n * (dim * sizeof(float) + 256) + (std::size_t{64} << 20);
  hetcache::EmbeddingCache cache(options);
  {
    constexpr std::size_t kBatch = 10'000;
    std::vector<std::string> keys;
    for (std::size_t first = 0; first < n; first += kBatch) {
      const std::size_t count = std::min(kBatch, n - first);
      keys.clear();
      for (std::size_t i = first; i < first + count; ++i) keys.push_back("v" + std::to_string(i));
      cache.put_batch(keys, candidates.view().slice(first, count));
      if ((first / kBatch) % 20 == 0) std::fprintf(stderr, "  %zu / %zu\n", first + count, n);
    }
  }
  if (cache.stats().entries != n) {
    std::fprintf(stderr, "the cache holds %llu of %zu vectors\n",
                 static_cast<unsigned long long>(cache.stats().entries), n);
    return 1;
  }

  struct Row {
    std::size_t nq;
    Metric metric;
    double view = 0, set = 0, cache = 0;
  };
  std::vector<Row> rows;
  std::vector<double> reads;
  for (std::size_t nq : nqs) {
    const MatrixView queries = all_queries.view().slice(0, nq);
    std::vector<std::function<void()>> systems;
    for (Metric m : metrics) {
      systems.push_back([&, m] { (void)engine.search(queries, candidates.view(), k, m, Tier::Cpu); });
#if defined(HETCACHE_BENCH_HAS_CANDIDATE_SET)
      systems.push_back([&, m] { (void)engine.search(queries, set, k, m, Tier::Cpu); });
#endif
      systems.push_back([&, m] { (void)cache.search(queries, k, m, Tier::Cpu); });
    }
    systems.push_back([&] { hetcache::bench::read_once(candidates.data(), n * candidates.stride(), threads); });
    std::fprintf(stderr, "Q=%zu: %zu systems x %zu rounds\n", nq, systems.size(), runs);
    const std::vector<double> med = interleaved_medians(static_cast<int>(runs), systems);
    std::size_t next = 0;
    for (Metric m : metrics) {
      Row row{nq, m};
      row.view = med[next++];
#if defined(HETCACHE_BENCH_HAS_CANDIDATE_SET)
      row.set = med[next++];
#endif
      row.cache = med[next++];
      rows.push_back(row);
    }
    reads.push_back(med[next]);
  }

  std::ostringstream md;
  char line[512];
  md << "# The price of the metric: Dot, Cosine, L2\n\n"
     << "- machine: " << hetcache::bench::cpu_model() << ", "
     << std::thread::hardware_concurrency() << " hardware threads; ISA "
     << hetcache::to_string(engine.isa()) << ", Cpu tier threads " << threads << "\n"
     << "- data: " << n << " x " << dim << " f32 candidates, uniform in [-1, 1); k = " << k
     << "; medians of " << runs << " interleaved rounds after a warm-up; every search on the Cpu "
     << "tier\n"
     << "- `view`: SimilarityEngine::search on a MatrixView; `set`: on a CandidateSet (norms "
     << "kept); `cache`: EmbeddingCache::search over the same vectors in its memory store; "
     << "`read ms`: all threads reading the candidate bytes once, in the same rounds; `x Dot`: "
     << "time / the same system's Dot time; `%BW` = read ms / time\n";
#if defined(HETCACHE_BENCH_HAS_CANDIDATE_SET)
  std::snprintf(line, sizeof line, "- making the CandidateSet (norms of %zu rows): %.1f ms\n", n,
                set_seconds * 1e3);
  md << line;
#endif
  md << "\n| Q | metric | view ms | x Dot | %BW | set ms | x Dot | %BW | cache ms | x Dot | %BW "
        "| read ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const Row& dot = rows[i - i % 3];
    const double read = reads[i / 3];
    auto cell = [&](double t, double dot_t) {
      char b[96];
      if (t <= 0) return std::string("n/a | | ");
      std::snprintf(b, sizeof b, "%.1f | %.3f | %.0f%%", t * 1e3, t / dot_t, 100 * read / t);
      return std::string(b);
    };
    std::snprintf(line, sizeof line, "| %zu | %s | %s | %s | %s | %.1f |\n", r.nq,
                  std::string(hetcache::to_string(r.metric)).c_str(),
                  cell(r.view, dot.view).c_str(), cell(r.set, dot.set).c_str(),
                  cell(r.cache, dot.cache).c_str(), read * 1e3);
    md << line;
  }
  return hetcache::bench::print_report(md.str(), out_path);
}
