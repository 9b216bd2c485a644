// The scheduler's proof: on every point of a compute sweep (Q x N from 1 x 10 to 256 x 1M, d = 768)
// and an I/O sweep (get_batch of 1 to 10k keys on the memory and RocksDB tiers), run every fixed
// tier, Hybrid and Adaptive in the same run, and report regret = time / best fixed tier's time.
// Times are medians of runs on random data, every method measured in interleaved rounds (see
// measure_interleaved). Adaptive is warmed up first (calibrated, then 20 runs or 0.2 s per
// point), as a long-running server would be; its explorations stay in the measured runs.
//
//   hetcache_regret_bench [--out FILE.md] [--quick]
#include <hetcache/hetcache.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "machine_limits.hpp"

namespace {

using namespace hetcache;
using Clock = std::chrono::steady_clock;

// One way of running a point (a fixed tier, Hybrid or Adaptive) and its run times.
struct Method {
  std::function<void()> run;
  std::vector<double> seconds;
};

// Every method runs in rounds -- a block of at least 2 runs and 70 ms (at most 40 runs) each, in
// turn, 3 rounds -- so drift on a shared machine (frequency, a neighbour's load) falls on all of
// them alike, and a method's own runs follow each other as a serving loop's would. Result: the
// median of each method's runs.
void measure_interleaved(const std::vector<Method*>& methods) {
  for (int round = 0; round < 3; ++round) {
    for (Method* m : methods) {
      const auto begin = Clock::now();
      for (int n = 1; n <= 40; ++n) {
        const auto start = Clock::now();
        m->run();
        const auto end = Clock::now();
        m->seconds.push_back(std::chrono::duration<double>(end - start).count());
        if (n >= 2 && std::chrono::duration<double>(end - begin).count() > 0.07) break;
      }
    }
  }
}

void fill_random(float* data, std::size_t n, std::uint64_t seed) {
  // xorshift64*: fast enough for 3 GB, never all zero.
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    const auto bits = static_cast<std::uint32_t>((x * 0x2545F4914F6CDD1Dull) >> 40);
    data[i] = static_cast<float>(bits) / static_cast<float>(1u << 24) * 2.0f - 1.0f;
  }
}

struct Row {
  std::string point;
  std::map<Tier, double> fixed;  // seconds per fixed tier
  double hybrid = 0.0, adaptive = 0.0;
  Tier hybrid_tier = Tier::Sequential;
  std::map<Tier, int> adaptive_tiers;  // decisions during the measured runs
  double best() const {
    double b = 1e300;
    for (const auto& [tier, s] : fixed) b = std::min(b, s);
    return b;
  }
};

std::string format_time(double s) {
  char buf[32];
  if (s >= 1.0) {
    std::snprintf(buf, sizeof buf, "%.2f s", s);
  } else if (s >= 1e-3) {
    std::snprintf(buf, sizeof buf, "%.2f ms", s * 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f us", s * 1e6);
  }
  return buf;
}

std::string tiers_used(const std::map<Tier, int>& used) {
  std::string s;
  for (const auto& [tier, n] : used) {
    if (!s.empty()) s += " ";
    s += std::string(to_string(tier)) + "x" + std::to_string(n);
  }
  return s;
}

void print_table(std::ostream& out, const std::string& title, const std::vector<Row>& rows,
                 const std::vector<Tier>& tiers) {
  out << "\n### " << title << "\n\n| point |";
  for (const Tier t : tiers) out << ' ' << to_string(t) << " |";
  out << " hybrid | hybrid regret | adaptive | adaptive regret | adaptive ran on |\n|---|";
  for (std::size_t i = 0; i < tiers.size(); ++i) out << "---|";
  out << "---|---|---|---|---|\n";
  for (const Row& r : rows) {
    out << "| " << r.point << " |";
    for (const Tier t : tiers) {
      const auto it = r.fixed.find(t);
      out << ' ' << (it == r.fixed.end() ? "-" : format_time(it->second)) << " |";
    }
    char h[16], a[16];
    std::snprintf(h, sizeof h, "%.2f", r.hybrid / r.best());
    std::snprintf(a, sizeof a, "%.2f", r.adaptive / r.best());
    out << ' ' << format_time(r.hybrid) << " (" << to_string(r.hybrid_tier) << ") | " << h << " | "
        << format_time(r.adaptive) << " | " << a << " | " << tiers_used(r.adaptive_tiers) << " |\n";
  }
}

// Adaptive's warm-up at a point: 20 runs or 0.2 s, at least 3 runs.
void warm_up(const std::function<void()>& run) {
  const auto begin = Clock::now();
  for (int i = 0; i < 20; ++i) {
    run();
    if (i >= 2 && std::chrono::duration<double>(Clock::now() - begin).count() > 0.2) break;
  }
}

// Decisions per tier a scheduler took between two metrics snapshots.
std::map<Tier, int> decisions_between(const PerformanceMetrics& before,
                                      const PerformanceMetrics& after) {
  std::map<Tier, int> used;
  for (const Tier t : kAllTiers) {
    const auto i = static_cast<std::size_t>(t);
    const auto n = static_cast<int>(after.tiers[i].decisions - before.tiers[i].decisions);
    if (n > 0) used[t] = n;
  }
  return used;
}

// Measures one point: every fixed tier, Hybrid and Adaptive (warmed up first), interleaved. The
// tiers the schedulers ran on come from their decision counts (asking each call for its Decision
// would time the formatting of an explanation no server asks for).
void measure_row(Row& row, const std::map<Tier, std::function<void()>>& fixed, Scheduler& hybrid,
                 const std::function<void()>& hybrid_run, Scheduler& adaptive,
                 const std::function<void()>& adaptive_run) {
  warm_up(adaptive_run);
  std::map<Tier, Method> fixed_methods;
  std::vector<Method*> methods;
  for (const auto& [tier, run] : fixed) {
    fixed_methods[tier].run = run;
    methods.push_back(&fixed_methods[tier]);
  }
  Method hybrid_method{hybrid_run, {}}, adaptive_method{adaptive_run, {}};
  methods.push_back(&hybrid_method);
  methods.push_back(&adaptive_method);
  const PerformanceMetrics hybrid_before = hybrid.metrics(), adaptive_before = adaptive.metrics();
  measure_interleaved(methods);
  for (auto& [tier, m] : fixed_methods) row.fixed[tier] = bench::median(m.seconds);
  row.hybrid = bench::median(hybrid_method.seconds);
  row.adaptive = bench::median(adaptive_method.seconds);
  const auto hybrid_used = decisions_between(hybrid_before, hybrid.metrics());
  row.hybrid_tier = hybrid_used.empty() ? Tier::Sequential : hybrid_used.begin()->first;
  row.adaptive_tiers = decisions_between(adaptive_before, adaptive.metrics());
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
      out_path = argv[++i];
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: %s [--out FILE.md] [--quick]\n", argv[0]);
      return 2;
    }
  }

  const std::string cache_dir =
      (std::filesystem::temp_directory_path() / ("hetcache-regret-" + std::to_string(::getpid())))
          .string();
  SchedulerConfig adaptive_config;
  adaptive_config.strategy = Strategy::Adaptive;
  adaptive_config.calibration_dir = cache_dir;
  SchedulerConfig hybrid_config = adaptive_config;
  hybrid_config.strategy = Strategy::Hybrid;
  Scheduler adaptive(adaptive_config), hybrid(hybrid_config);
  const SimilarityEngine& engine = adaptive.engine();
  std::vector<Tier> compute_tiers = {Tier::Sequential, Tier::Cpu};
  if (adaptive.gpu_available()) compute_tiers.push_back(Tier::Gpu);

  std::ostringstream report;
  report << "# Scheduler regret, " << bench::cpu_model() << ", "
         << std::thread::hardware_concurrency() << " threads"
         << (adaptive.gpu_available() ? ", with GPU" : ", no GPU") << "\n\n"
         << "Regret = median time / the best fixed tier's median time at that point (1.00 = "
            "as fast as the best fixed choice). Adaptive runs warmed up (calibrated, a few "
            "observations per point).\n";

  // --- compute: top-10 cosine search, d = 768 ----------------------------------------------
  constexpr std::size_t kDim = 768;
  const std::vector<std::size_t> qs = {1, 16, 256};
  const std::vector<std::size_t> ns = quick ? std::vector<std::size_t>{10, 1000, 100000}
                                            : std::vector<std::size_t>{10, 1000, 100000, 1000000};
  const std::size_t max_n = ns.back();
  std::vector<float> candidates_data(max_n * kDim), queries_data(256 * kDim);
  fill_random(candidates_data.data(), candidates_data.size(), 1);
  fill_random(queries_data.data(), queries_data.size(), 2);
  std::vector<Row> compute_rows;
  for (const std::size_t n : ns) {
    for (const std::size_t q : qs) {
      const MatrixView candidates(candidates_data.data(), n, kDim);
      const MatrixView queries(queries_data.data(), q, kDim);
      Row row;
      row.point = "Q " + std::to_string(q) + " x N " + std::to_string(n);
      std::map<Tier, std::function<void()>> fixed;
      for (const Tier t : compute_tiers)
        fixed[t] = [&, t] { (void)engine.search(queries, candidates, 10, Metric::Cosine, t); };
      measure_row(
          row, fixed, hybrid, [&] { (void)hybrid.search(queries, candidates, 10, Metric::Cosine); },
          adaptive, [&] { (void)adaptive.search(queries, candidates, 10, Metric::Cosine); });
      std::fprintf(stderr, "compute %s: best %s, adaptive %.2f\n", row.point.c_str(),
                   format_time(row.best()).c_str(), row.adaptive / row.best());
      Work work;
      work.op = OpKind::Similarity;
      work.items = n;
      work.queries = q;
      work.dim = kDim;
      std::fprintf(stderr, "%s", adaptive.decide(work).explain().c_str());
      compute_rows.push_back(row);
    }
  }
  std::vector<float>().swap(candidates_data);

  // --- I/O: get_batch on the memory tier and through RocksDB -------------------------------
  constexpr std::size_t kIoDim = 256, kKeys = 100000;
  const std::vector<std::size_t> batches = {1, 10, 100, 1000, 10000};
  const std::vector<Tier> io_tiers = {Tier::Sequential, Tier::Fiber, Tier::Cpu};
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < kKeys; ++i) keys.push_back("doc-" + std::to_string(i));
  std::vector<float> values(kKeys * kIoDim);
  fill_random(values.data(), values.size(), 3);
  std::vector<Row> io_rows;
  for (const bool durable : {false, true}) {
    CacheOptions options;
    options.dim = kIoDim;
    if (durable) {
      RocksDbOptions rocks;
      rocks.path = cache_dir + "/rocksdb";
      options.durable = rocks;
      options.max_entries = 1024;  // most gets read through RocksDB
    }
    EmbeddingCache cache(options);
    for (std::size_t first = 0; first < kKeys; first += 10000)
      cache.put_batch(std::span<const std::string>(keys).subspan(first, 10000),
                      MatrixView(values.data() + first * kIoDim, 10000, kIoDim));
    std::mt19937_64 rng(4);
    std::vector<float> out(10000 * kIoDim);
    for (const std::size_t b : batches) {
      // A fresh random batch per run, so RocksDB reads are not served by the memory tier.
      std::vector<std::string> batch(b);
      const auto pick = [&] {
        for (auto& k : batch) k = keys[rng() % kKeys];
      };
      const MutableMatrixView rows(out.data(), b, kIoDim);
      Row row;
      row.point = std::string(durable ? "rocksdb" : "memory") + " get_batch " + std::to_string(b);
      std::map<Tier, std::function<void()>> fixed;
      for (const Tier t : io_tiers) {
        fixed[t] = [&, t] {
          pick();
          (void)cache.get_batch(batch, rows, t);
        };
      }
      measure_row(
          row, fixed, hybrid,
          [&] {
            pick();
            (void)hybrid.get_batch(cache, batch, rows);
          },
          adaptive,
          [&] {
            pick();
            (void)adaptive.get_batch(cache, batch, rows);
          });
      std::fprintf(stderr, "io %s: best %s, adaptive %.2f\n", row.point.c_str(),
                   format_time(row.best()).c_str(), row.adaptive / row.best());
      Work work;
      work.op = b == 1 ? OpKind::Get : OpKind::GetBatch;
      work.items = b;
      work.dim = kIoDim;
      work.durable = durable;
      std::fprintf(stderr, "%s", adaptive.decide(work).explain().c_str());
      io_rows.push_back(row);
    }
  }

  print_table(report, "Compute: top-10 cosine search, d = 768", compute_rows, compute_tiers);
  print_table(report, "I/O: get_batch of random keys, d = 256 (RocksDB: memory tier of 1024)",
              io_rows, io_tiers);
  double log_sum = 0.0, worst = 0.0, hybrid_log_sum = 0.0;
  std::size_t points = 0;
  std::string misses;
  for (const auto* rows : {&compute_rows, &io_rows}) {
    for (const Row& r : *rows) {
      const double regret = r.adaptive / r.best();
      log_sum += std::log(regret);
      hybrid_log_sum += std::log(r.hybrid / r.best());
      worst = std::max(worst, regret);
      ++points;
      if (regret > 1.10) misses += " " + r.point + " (" + std::to_string(regret).substr(0, 4) + ")";
    }
  }
  char summary[256];
  std::snprintf(summary, sizeof summary,
                "\nAdaptive: geometric mean regret %.3f (target <= 1.03), worst %.2f (target <= "
                "1.10) over %zu points; Hybrid: geometric mean %.3f.\n",
                std::exp(log_sum / static_cast<double>(points)), worst, points,
                std::exp(hybrid_log_sum / static_cast<double>(points)));
  report << summary;
  report << (misses.empty() ? "Every point within 1.10.\n" : "Points over 1.10:" + misses + "\n");
  const PerformanceMetrics m = adaptive.metrics();
  report << "\nAdaptive's metrics after the run (JSON):\n\n```\n" << m.to_json() << "\n```\n";

  std::fputs(report.str().c_str(), stdout);
  if (!out_path.empty()) std::ofstream(out_path) << report.str();
  std::error_code ec;
  std::filesystem::remove_all(cache_dir, ec);
  return 0;
}
