// demo and bench: the seed's three tables (CPU-intensive, I/O-intensive, mixed workload) measured
// for every strategy on this machine, beside the numbers the seed claimed.
#include <hetcache/hetcache.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "commands.hpp"
#include "demo_report.hpp"
#include "file_names.hpp"
#include "options.hpp"
#include "output_file.hpp"
#include "plot.hpp"

namespace hetcache::cli {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kDim = 768;
constexpr std::size_t kMixedDocs = 100, kMixedPerDoc = 10;
static_assert(kMixedDocs * kMixedPerDoc == kMixedVectors);

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A cell of short operations runs more rounds than --runs asks, until it has taken kCellBudgetMs
// (ms, and at most kMaxRounds rounds), and the mixed workload more runs until it has taken
// kMixedBudgetMs. On a shared 2-vCPU machine, 0.2 s cells and five mixed runs put two strategies
// that ran the same tier more than 10% apart in 20-26% of the I/O cells and 39% of the
// random-access phases; 0.6 s cells and 3 s of mixed runs in 7 of 270 such pairs, for a demo of
// about 7 s instead of 3 (bench/results/cold-start-2026-12-04-b.md).
constexpr double kCellBudgetMs = 600;
constexpr int kMaxRounds = 200;
constexpr double kMixedBudgetMs = 3000;
constexpr int kMaxMixedRuns = 100;

// Which of `count` strategies runs j-th in round `round`: each round starts one further along, so
// what runs first after a cell's setup, or after another phase, is not always the same strategy.
std::size_t in_turn(std::size_t j, int round, std::size_t count) {
  return (j + static_cast<std::size_t>(round)) % count;
}

// The median time of each method, measured in interleaved rounds so a slow spell of a shared
// machine hits every strategy alike: at least `runs` rounds, more while the cell is under
// kCellBudgetMs. Each round runs a method twice in a row and times the second: a thread pool left
// idle while the other strategies ran has parked its threads, and waking them is not what a stream
// of one strategy's work costs. The rounds take turns (in_turn).
std::vector<double> median_ms_interleaved(int runs,
                                          const std::vector<std::function<void()>>& methods) {
  std::vector<std::vector<double>> times(methods.size());
  const auto cell_start = Clock::now();
  for (int i = 0; i < runs || (i < kMaxRounds && ms_since(cell_start) < kCellBudgetMs); ++i) {
    for (std::size_t j = 0; j < methods.size(); ++j) {
      const std::size_t m = in_turn(j, i, methods.size());
      methods[m]();
      const auto start = Clock::now();
      methods[m]();
      times[m].push_back(ms_since(start));
    }
  }
  std::vector<double> medians;
  for (auto& t : times) medians.push_back(median(std::move(t)));
  return medians;
}

std::vector<float> random_rows(std::size_t rows, std::uint64_t seed) {
  std::vector<float> v(rows * kDim);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (auto& x : v) x = u(rng);
  return v;
}

struct Options {
  std::string dir;  // where the databases live
  int runs = 5;
  std::vector<std::size_t> cpu_sizes{100, 500, 1000, 2000};
  std::vector<std::size_t> io_sizes{50, 200, 500, 1000};
  bool quiet = false;
  const char* command = "demo";
};

// Decisions per tier so far; a phase's choices are the difference of two readings.
using TierCounts = std::array<std::uint64_t, kAllTiers.size()>;

TierCounts decisions(const Scheduler& s) {
  const PerformanceMetrics m = s.metrics();
  TierCounts n{};
  for (std::size_t t = 0; t < n.size(); ++t) n[t] = m.tiers[t].decisions;
  return n;
}

std::string describe(const TierCounts& n) {
  std::string out;
  for (const Tier t : kAllTiers) {
    const auto count = n[static_cast<std::size_t>(t)];
    if (count == 0) continue;
    out += (out.empty() ? "" : " ") + std::string(to_string(t)) + " x" + std::to_string(count);
  }
  return out;
}

// A cell's ran_on: the tiers chosen, for Adaptive (the fixed strategies' cells leave it empty).
std::string ran_on(Strategy s, const TierCounts& n) {
  return s == Strategy::Adaptive ? describe(n) : std::string();
}

SchedulerConfig config_for(Strategy s) {
  SchedulerConfig c;
  c.strategy = s;
  return c;
}

// One scheduler per strategy, kept across a table's sizes (Adaptive learns as it goes).
std::vector<std::unique_ptr<Scheduler>> schedulers_for(const std::vector<Strategy>& names) {
  std::vector<std::unique_ptr<Scheduler>> schedulers;
  for (const Strategy s : names) schedulers.push_back(std::make_unique<Scheduler>(config_for(s)));
  return schedulers;
}

// CPU-intensive: 64 queries x N candidates, d = 768, top-10 cosine, scheduled.
void cpu_table(const Options& o, bool gpu, std::vector<Cell>& cells) {
  const std::size_t max_n = *std::max_element(o.cpu_sizes.begin(), o.cpu_sizes.end());
  const auto candidates = random_rows(max_n, 1), queries = random_rows(64, 2);
  const auto names = strategies(gpu);
  const auto schedulers = schedulers_for(names);
  for (const std::size_t n : o.cpu_sizes) {
    const MatrixView c(candidates.data(), n, kDim), q(queries.data(), 64, kDim);
    std::vector<std::function<void()>> methods;
    for (auto& scheduler : schedulers) {
      (void)scheduler->search(q, c, 10);  // warm-up (and Adaptive's first look)
      scheduler->reset_metrics();
      methods.push_back([&scheduler, q, c] { (void)scheduler->search(q, c, 10); });
    }
    const auto ms = median_ms_interleaved(o.runs, methods);
    for (std::size_t i = 0; i < names.size(); ++i) {
      cells.push_back({"cpu", n, names[i], ms[i], ran_on(names[i], decisions(*schedulers[i]))});
    }
  }
}

// I/O-intensive: get_batch of N random keys read through RocksDB (memory store of 256 entries).
void io_table(const Options& o, bool gpu, std::vector<Cell>& cells) {
  CacheOptions options;
  options.dim = kDim;
  options.max_entries = 256;
  RocksDbOptions rocks;
  rocks.path = o.dir + "/io";
  options.durable = rocks;
  EmbeddingCache cache(options);
  constexpr std::size_t kKeys = 5000;
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < kKeys; ++i) keys.push_back("doc-" + std::to_string(i));
  const auto values = random_rows(kKeys, 3);
  cache.put_batch(keys, MatrixView(values.data(), kKeys, kDim));
  cache.compact();  // no flush or compaction left running in the background while measuring
  std::mt19937_64 rng(4);
  const std::size_t max_n = *std::max_element(o.io_sizes.begin(), o.io_sizes.end());
  std::vector<float> out(max_n * kDim);
  const auto names = strategies(gpu);
  const auto schedulers = schedulers_for(names);
  for (const std::size_t n : o.io_sizes) {
    std::vector<std::string> batch(n);
    const MutableMatrixView rows(out.data(), n, kDim);
    std::vector<std::function<void()>> methods;
    for (auto& scheduler : schedulers) {
      const auto run = [&] {
        for (auto& k : batch) k = keys[rng() % kKeys];
        (void)scheduler->get_batch(cache, batch, rows);
      };
      run();  // warm-up (and Adaptive's first look)
      scheduler->reset_metrics();
      methods.push_back(run);
    }
    const auto ms = median_ms_interleaved(o.runs, methods);
    for (std::size_t i = 0; i < names.size(); ++i) {
      cells.push_back({"io", n, names[i], ms[i], ran_on(names[i], decisions(*schedulers[i]))});
    }
  }
}

// Mixed: 100 documents x 10 embeddings -- ingestion (100 put_batch of 10), similarity search
// (each document's 10 embeddings against all 1000), random access (100 get_batch of 10); each
// run on a fresh database per strategy, the median of each phase recorded (size = the 1000
// vectors). Strategies are interleaved phase by phase: every strategy ingests, then every
// strategy searches, then every strategy reads, so a slow spell of a shared machine lands on one
// phase of every strategy rather than on one strategy's whole run; each run starts the phases
// with the next strategy, so none is always first after the phase before.
void mixed_table(const Options& o, bool gpu, std::vector<Cell>& cells) {
  const auto values = random_rows(kMixedVectors, 5);
  std::vector<std::string> keys;
  for (std::size_t d = 0; d < kMixedDocs; ++d)
    for (std::size_t e = 0; e < kMixedPerDoc; ++e)
      keys.push_back("doc-" + std::to_string(d) + "/" + std::to_string(e));
  std::vector<float> out(kMixedPerDoc * kDim);
  const auto names = strategies(gpu);
  struct Phases {
    std::vector<double> ingest, search, access;
    TierCounts ingest_on{}, search_on{}, access_on{};  // decisions made during each phase
  };
  std::vector<Phases> phases(names.size());
  const auto schedulers = schedulers_for(names);
  const auto doc = [&](std::size_t d) {
    return MatrixView(values.data() + d * kMixedPerDoc * kDim, kMixedPerDoc, kDim);
  };
  const MatrixView all(values.data(), kMixedVectors, kDim);
  const auto timed = [&](std::size_t i, std::vector<double>& ms, TierCounts& on, auto&& phase) {
    const TierCounts before = decisions(*schedulers[i]);
    const auto t0 = Clock::now();
    phase();
    ms.push_back(ms_since(t0));
    const TierCounts after = decisions(*schedulers[i]);
    for (std::size_t t = 0; t < on.size(); ++t) on[t] += after[t] - before[t];
  };
  const auto table_start = Clock::now();
  for (int run = 0; run < o.runs || (run < kMaxMixedRuns && ms_since(table_start) < kMixedBudgetMs);
       ++run) {
    std::vector<std::string> dirs;
    std::vector<std::unique_ptr<EmbeddingCache>> caches;
    for (std::size_t i = 0; i < names.size(); ++i) {
      dirs.push_back(o.dir + "/mixed-" + std::string(to_string(names[i])) + "-" +
                     std::to_string(run));
      CacheOptions options;
      options.dim = kDim;
      RocksDbOptions rocks;
      rocks.path = dirs.back();
      options.durable = rocks;
      caches.push_back(std::make_unique<EmbeddingCache>(options));
    }
    for (std::size_t j = 0; j < names.size(); ++j) {
      const std::size_t i = in_turn(j, run, names.size());
      timed(i, phases[i].ingest, phases[i].ingest_on, [&] {
        for (std::size_t d = 0; d < kMixedDocs; ++d)
          schedulers[i]->put_batch(
              *caches[i],
              std::span<const std::string>(keys).subspan(d * kMixedPerDoc, kMixedPerDoc), doc(d));
      });
    }
    for (std::size_t j = 0; j < names.size(); ++j) {
      const std::size_t i = in_turn(j, run, names.size());
      timed(i, phases[i].search, phases[i].search_on, [&] {
        for (std::size_t d = 0; d < kMixedDocs; ++d) (void)schedulers[i]->search(doc(d), all, 10);
      });
    }
    for (std::size_t j = 0; j < names.size(); ++j) {
      const std::size_t i = in_turn(j, run, names.size());
      std::mt19937_64 rng(6);  // every strategy reads the same keys
      std::vector<std::string> batch(kMixedPerDoc);
      timed(i, phases[i].access, phases[i].access_on, [&] {
        for (std::size_t r = 0; r < kMixedDocs; ++r) {
          for (auto& k : batch) k = keys[rng() % kMixedVectors];
          (void)schedulers[i]->get_batch(*caches[i], batch,
                                         MutableMatrixView(out.data(), kMixedPerDoc, kDim));
        }
      });
    }
    caches.clear();
    for (const std::string& dir : dirs) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    const Strategy name = names[i];
    Phases& p = phases[i];
    cells.push_back(
        {"mixed-ingest", kMixedVectors, name, median(p.ingest), ran_on(name, p.ingest_on)});
    cells.push_back(
        {"mixed-search", kMixedVectors, name, median(p.search), ran_on(name, p.search_on)});
    cells.push_back(
        {"mixed-access", kMixedVectors, name, median(p.access), ran_on(name, p.access_on)});
  }
}

std::string default_dir() {
  return (std::filesystem::temp_directory_path() / ("hetcache-demo-" + std::to_string(::getpid())))
      .string();
}

// "AMD EPYC | 2 threads | avx512 | no gpu": the scheduler's machine key without its model version.
std::string machine_description(const Scheduler& s) {
  const std::string key = s.machine_key();
  return key.substr(0, key.rfind(" | "));
}

std::string today() {
  const std::time_t now = std::time(nullptr);
  char date[16];
  std::strftime(date, sizeof date, "%Y-%m-%d", std::localtime(&now));
  return date;
}

// plot: a PNG drawn from the CSV (written beside it, FILE.csv, when --csv is not given).
void run_tables(Options o, const std::string& json, std::string csv, const std::string& plot) {
  if (!plot.empty()) {
    require_gnuplot();  // before minutes of measuring
    if (csv.empty()) csv = std::filesystem::path(plot).replace_extension(".csv").string();
  }
  if (!plot.empty() && lower_extension(plot) != ".png")
    throw Error(ErrorCode::InvalidArgument, "--plot " + plot + ": the plot is a PNG (FILE.png)");
  // The outputs are opened first, so a path that cannot be written fails before measuring; each
  // replaces its target only when complete.
  std::optional<OutputFile> csv_file, json_file, png_file;
  if (!csv.empty()) csv_file.emplace(csv);
  if (!json.empty()) json_file.emplace(json);
  if (!plot.empty()) png_file.emplace(plot);
  const bool own_dir = o.dir.empty();
  if (own_dir) o.dir = default_dir();
  std::filesystem::create_directories(o.dir);
  Scheduler probe(config_for(Strategy::Adaptive));
  const bool gpu = probe.gpu_available();
  const auto start = Clock::now();
  std::vector<Cell> cells;
  if (!o.quiet) std::fprintf(stderr, "measuring the CPU-intensive table...\n");
  cpu_table(o, gpu, cells);
  if (!o.quiet) std::fprintf(stderr, "measuring the I/O-intensive table...\n");
  io_table(o, gpu, cells);
  if (!o.quiet) std::fprintf(stderr, "measuring the mixed workload...\n");
  mixed_table(o, gpu, cells);
  const std::string machine = machine_description(probe);
  std::printf(
      "# hetcache %s: every strategy on this machine (%s), %s\n\nMedians of at least %d "
      "runs (a CPU or I/O cell runs more, up to %d, until it has taken %.1f s; the mixed "
      "workload until it has taken %.0f s), strategies interleaved, each round starting with "
      "the next; the seed's numbers are its claims, never measured.\n",
      o.command, machine.c_str(), today().c_str(), o.runs, std::max(o.runs, kMaxRounds),
      kCellBudgetMs / 1000, kMixedBudgetMs / 1000);
  print_size_table("CPU-intensive (similarity)",
                   "64 queries x N candidates, d = 768, top-10 cosine", cells, "cpu", o.cpu_sizes,
                   gpu);
  print_size_table("I/O-intensive (cache reads)",
                   "get_batch of N random keys read through RocksDB, d = 768", cells, "io",
                   o.io_sizes, gpu);
  print_mixed(cells, gpu);
  std::printf("\ndone in %.1f s\n", std::chrono::duration<double>(Clock::now() - start).count());
  // Written series by series (table, then strategy in the tables' order, by size): measured
  // interleaved, but a plot joins consecutive rows.
  std::map<std::string, std::size_t> table_rank;  // tables in the order they were measured
  for (const Cell& c : cells) table_rank.emplace(c.table, table_rank.size());
  std::stable_sort(cells.begin(), cells.end(), [&](const Cell& a, const Cell& b) {
    if (a.table != b.table) return table_rank[a.table] < table_rank[b.table];
    if (a.strategy != b.strategy) return a.strategy < b.strategy;
    return a.size < b.size;
  });
  if (csv_file) {
    write_csv(csv_file->stream(), cells);
    csv_file->commit();
  }
  if (png_file) {
    // gnuplot draws into the temporary file, which then replaces the target.
    plot_bench_csv(
        csv, png_file->temporary_path(),
        machine + ", " + today() + ", medians of >= " + std::to_string(o.runs) + " runs");
    png_file->commit();
    std::printf("plot: %s (from %s)\n", plot.c_str(), csv.c_str());
  }
  if (json_file) {
    write_json(json_file->stream(), cells);
    json_file->commit();
  }
  if (own_dir) {
    std::error_code ec;
    std::filesystem::remove_all(o.dir, ec);
  }
}

void add_runs(CLI::App* c, Options& o, const std::string& description) {
  c->add_option_function<std::string>(
       "--runs",
       [&o](const std::string& text) {
         o.runs = static_cast<int>(parse_count("--runs", text, 1, 1000));
       },
       description)
      ->type_name("N");
}

}  // namespace

void add_demo(CLI::App& app) {
  auto* c = app.add_subcommand("demo",
                               "The main job: the seed's CPU, I/O and mixed-workload "
                               "tables measured for every strategy (RocksDB, no server)");
  static Options o;
  c->add_option("--db", o.dir, "directory for the databases (default: a temporary one, removed)");
  add_runs(c, o, "runs per measurement, median reported (default 5; at least this many)");
  c->add_flag("--quiet", o.quiet, "no progress output");
  c->callback([] { run_tables(o, "", "", ""); });
}

void add_bench(CLI::App& app) {
  auto* c = app.add_subcommand("bench", "The strategy matrix over more sizes, with CSV / JSON");
  static Options o;
  static std::string json, csv, plot;
  o.runs = 7;
  o.command = "bench";
  o.cpu_sizes = {100, 500, 1000, 2000, 5000, 10000, 50000};
  o.io_sizes = {10, 50, 200, 500, 1000, 2000, 5000};
  c->add_option("--db", o.dir, "directory for the databases (default: a temporary one)");
  add_runs(c, o, "runs per measurement, median reported (default 7; at least this many)");
  add_counts(c, "--cpu-sizes", o.cpu_sizes, 1, 1'000'000,
             "candidate counts of the CPU table, up to 1000000 (d = 768: 3 GB)");
  add_counts(c, "--io-sizes", o.io_sizes, 1, 100'000, "key counts of the I/O table, up to 100000");
  c->add_option("--json", json, "write every measurement as JSON to this file");
  c->add_option("--csv", csv, "write every measurement as CSV to this file");
  c->add_option("--plot", plot,
                "draw time against batch size per strategy into this PNG with gnuplot, from the "
                "CSV (written beside it when --csv is not given)");
  c->add_flag("--quiet", o.quiet, "no progress output");
  c->callback([] { run_tables(o, json, csv, plot); });
}

}  // namespace hetcache::cli
