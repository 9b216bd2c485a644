// The I/O table across a network: a real redis-server behind the latency proxy
// (tests/support/latency_proxy.hpp) at 0, 0.5 and 2 ms of added round trip, d = 768, a memory
// tier of ~300 entries so reads reach Redis. Two shapes, one run, every mode interleaved:
//   (a) one get_batch of 10 / 100 / 1000 random stored keys, median ms of interleaved rounds;
//   (b) a server: C = 1, 16, 256, 1024 clients, each doing get_or_compute of 1-10 random keys in a
//       loop for a fixed time; requests per second and p50 / p99 latency (from the moment a client
//       is ready to send to its answer).
// Modes (in (a) each on a cache and connection of its own):
//   fibers     : (a) get_batch on Tier::Fiber; (b) client fibers calling get_or_compute_async on a
//                FiberOnly cache
//   tbb        : (a) Tier::Cpu (chunks across the TBB arena, each a blocking call); (b) client
//                fibers calling get_or_compute_async on a CpuOnly cache: each request is a task in
//                the arena, blocking its thread for the round trip
//   sequential : (a) Tier::Sequential (the calling thread); (b) one thread serving every client's
//                requests in turn, each a blocking call
//   hybrid, adaptive : (a) get_batch with no tier; (b) client fibers calling get_or_compute_async,
//                on caches with those strategies
// --batches-only skips (b); --rounds R sets (a)'s rounds (default 61, --quick 15: a cell of 11
// rounds moved by up to 30% between runs on a 2-vCPU guest, and 61 take seconds).
// --load SECONDS runs the load test instead (tests/support/redis_load.hpp at full length).
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>
#include <hetcache/resources.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_data.hpp"
#include "machine_limits.hpp"
#include "support/latency_proxy.hpp"
#include "support/redis_load.hpp"
#include "support/redis_server.hpp"

namespace hetcache {
namespace {

using Clock = std::chrono::steady_clock;
using bench::median;
constexpr std::size_t kDim = 768, kStored = 20000;
const char* const kModes[] = {"fibers", "tbb", "sequential", "hybrid", "adaptive"};

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string key_of(std::size_t i) { return "doc:" + std::to_string(i); }

// The embed function of get_or_compute: every key is stored, so it runs only for a key written
// while being read; a deterministic fill then.
Matrix embed(std::span<const std::string> keys) {
  Matrix m(keys.size(), kDim);
  for (std::size_t i = 0; i < keys.size(); ++i)
    for (std::size_t j = 0; j < kDim; ++j) m.mutable_view().row(i)[j] = 0.5f + float(j) * 1e-4f;
  return m;
}

struct Caches {
  std::map<std::string, std::unique_ptr<EmbeddingCache>> by_strategy;  // fiber, cpu, hybrid, ...
  EmbeddingCache& operator[](const std::string& s) { return *by_strategy.at(s); }
};

Caches make_caches(int port, const std::shared_ptr<Resources>& resources, std::size_t connections) {
  Caches caches;
  // One cache (and connection) per mode, so each idles as long between its calls: modes that
  // shared one cache ran on a connection and memory store the other modes had just warmed.
  const std::pair<const char*, Strategy> strategies[] = {{"fibers", Strategy::FiberOnly},
                                                         {"tbb", Strategy::CpuOnly},
                                                         {"sequential", Strategy::Hybrid},
                                                         {"hybrid", Strategy::Hybrid},
                                                         {"adaptive", Strategy::Adaptive}};
  for (const auto& [name, strategy] : strategies) {
    CacheOptions options;
    options.dim = kDim;
    options.max_bytes = std::size_t{1} << 20;  // ~300 vectors: reads reach Redis
    options.redis = RedisOptions{};
    options.redis->port = port;
    options.redis->command_timeout = std::chrono::milliseconds(10000);
    options.redis->connections = connections;
    options.resources = resources;
    options.scheduler.strategy = strategy;
    caches.by_strategy[name] = std::make_unique<EmbeddingCache>(options);
  }
  return caches;
}

// (a) one get_batch of n keys per mode, rounds interleaved; median ms per mode.
std::map<std::string, double> one_batch(Caches& caches, std::size_t n, int rounds,
                                        std::mt19937_64& rng) {
  std::map<std::string, std::vector<double>> times;
  Matrix out(n, kDim);
  std::uniform_int_distribution<std::size_t> pick(0, kStored - 1);
  for (int r = 0; r < rounds; ++r) {
    for (const std::string mode : kModes) {
      std::vector<std::string> keys;
      for (std::size_t i = 0; i < n; ++i) keys.push_back(key_of(pick(rng)));
      const auto t0 = Clock::now();
      if (mode == "fibers") caches["fibers"].get_batch(keys, out.mutable_view(), Tier::Fiber);
      if (mode == "tbb") caches["tbb"].get_batch(keys, out.mutable_view(), Tier::Cpu);
      if (mode == "sequential")
        caches["sequential"].get_batch(keys, out.mutable_view(), Tier::Sequential);
      if (mode == "hybrid") caches["hybrid"].get_batch(keys, out.mutable_view());
      if (mode == "adaptive") caches["adaptive"].get_batch(keys, out.mutable_view());
      times[mode].push_back(ms(Clock::now() - t0));
    }
  }
  std::map<std::string, double> medians;
  for (auto& [mode, v] : times) medians[mode] = median(v);
  return medians;
}

struct ServerResult {
  double per_second = 0, p50_ms = 0, p99_ms = 0;
  std::size_t errors = 0, slowest_client = 0, fastest_client = 0;  // requests per client
};

// One client's request: 1-10 random stored keys.
struct Client {
  std::mt19937_64 rng;
  Matrix out{10, kDim};
  std::vector<std::string> keys;
  std::vector<double> latencies;
  std::size_t errors = 0;
  void next_keys() {
    keys.clear();
    const std::size_t n = 1 + rng() % 10;
    for (std::size_t i = 0; i < n; ++i) keys.push_back(key_of(rng() % kStored));
  }
  MutableMatrixView view() {
    return MutableMatrixView(out.mutable_view().row(0), keys.size(), kDim);
  }
};

ServerResult summarise(std::vector<Client>& clients, double seconds) {
  std::vector<double> all;
  ServerResult r;
  r.fastest_client = 0;
  r.slowest_client = SIZE_MAX;
  for (auto& c : clients) {
    all.insert(all.end(), c.latencies.begin(), c.latencies.end());
    r.errors += c.errors;
    r.fastest_client = std::max(r.fastest_client, c.latencies.size());
    r.slowest_client = std::min(r.slowest_client, c.latencies.size());
  }
  std::sort(all.begin(), all.end());
  r.per_second = static_cast<double>(all.size()) / seconds;
  if (!all.empty()) {
    r.p50_ms = all[all.size() / 2];
    r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  return r;
}

// (b) C clients for `seconds` in one mode.
ServerResult server(Caches& caches, Resources& resources, const std::string& mode,
                    std::size_t clients_n, double seconds, std::uint64_t seed) {
  std::vector<Client> clients(clients_n);
  for (std::size_t c = 0; c < clients_n; ++c) clients[c].rng.seed(seed + c);
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  if (mode == "sequential") {
    // One thread, one blocking call at a time; a client is ready again when its answer came.
    std::vector<Clock::time_point> ready(clients_n, start);
    while (Clock::now() < deadline) {
      for (std::size_t c = 0; c < clients_n && Clock::now() < deadline; ++c) {
        Client& client = clients[c];
        client.next_keys();
        try {
          caches["hybrid"].get_or_compute(client.keys, client.view(), embed);
        } catch (const Error&) {
          ++client.errors;
        }
        const auto now = Clock::now();
        client.latencies.push_back(ms(now - ready[c]));
        ready[c] = now;
      }
    }
    return summarise(clients, seconds);
  }
  EmbeddingCache& cache = caches[mode];
  std::vector<Future<void>> running;
  for (auto& client : clients) {
    running.push_back(resources.submit([&client, &cache, deadline] {
      while (Clock::now() < deadline) {
        client.next_keys();
        const auto t0 = Clock::now();
        try {
          cache.get_or_compute_async(client.keys, client.view(), embed).get();
        } catch (const Error&) {
          ++client.errors;
        }
        client.latencies.push_back(ms(Clock::now() - t0));
      }
    }));
  }
  for (auto& f : running) f.get();
  return summarise(clients, ms(Clock::now() - start) / 1000.0);
}

// The load test at full length: 1024 clients at 1 ms round trips under the default strategy for
// warm-up + `seconds`, the proxy dropping every connection for 2 s halfway through the measured
// part; the report as markdown.
int load_test(double seconds, double warmup_s, const std::string& out_path) {
  testing::RedisServerProcess redis;
  testing::LatencyProxy proxy(redis.port(), std::chrono::microseconds(500));
  CacheOptions options;
  options.dim = kDim;
  options.max_bytes = std::size_t{1} << 20;  // ~300 vectors: reads reach Redis
  options.redis = RedisOptions{};
  options.redis->port = proxy.port();
  options.redis->connect_timeout = std::chrono::milliseconds(500);
  options.redis->command_timeout = std::chrono::milliseconds(1000);
  EmbeddingCache cache(options);
  testing::LoadOptions load;
  load.clients = 1024;
  load.stored = kStored;
  load.warmup = std::chrono::milliseconds(static_cast<long>(warmup_s * 1000));
  load.measure = std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  load.outage = std::chrono::milliseconds(2000);
  std::cerr << "storing " << kStored << " vectors, then " << warmup_s << " s warm-up + " << seconds
            << " s\n";
  testing::store_load_keys(cache, load.stored);
  const testing::LoadReport r = testing::run_load(cache, proxy, load);
  const double growth = static_cast<double>(r.rss_end) / static_cast<double>(r.rss_after_warmup);
  std::ostringstream md;
  char line[256];
  md << "# Load test -- " << bench::cpu_model() << ", " << std::thread::hardware_concurrency()
     << " hardware threads\n\n`hetcache_io_latency_bench --load " << seconds << " --warmup "
     << warmup_s << "`: 1024 client fibers, each get_or_compute_async of 1-10 random keys of "
     << kStored << " stored (d = " << kDim
     << ") in a loop, answers checked; Redis behind the proxy at +1 ms round trip; default "
        "strategy (Hybrid), connect timeout 500 ms, command timeout 1000 ms; the proxy drops "
        "every connection for 2 s halfway through.\n\n| measure | value | goal |\n|---|---:|---|\n";
  const auto row = [&](const char* what, const std::string& value, const char* goal) {
    md << "| " << what << " | " << value << " | " << goal << " |\n";
  };
  row("requests answered", std::to_string(r.ok), "");
  row("wrong answers", std::to_string(r.wrong), "0");
  row("failed outside the outage", std::to_string(r.failed_outside), "0");
  row("failed in the outage (StoreUnavailable)", std::to_string(r.failed_in_outage), "> 0");
  row("keys embedded (a failed read must not become one)", std::to_string(r.embedded), "0");
  std::snprintf(line, sizeof line, "%.0f", r.per_second);
  row("requests/s outside the outage", line, "");
  std::snprintf(line, sizeof line, "%.1f / %.1f ms", r.p50_ms, r.p99_ms);
  row("p50 / p99 outside the outage (2% buckets)", line, "");
  std::snprintf(line, sizeof line, "%.0f ms", r.max_ms);
  row("slowest answer", line, "< connect + command timeout");
  std::snprintf(line, sizeof line, "%llu - %llu",
                static_cast<unsigned long long>(r.fewest_per_client),
                static_cast<unsigned long long>(r.most_per_client));
  row("fewest - most requests per client (measured)", line, "no client starved");
  std::snprintf(line, sizeof line, "%.0f ms", r.first_ok_after_outage_ms);
  row("first success after the outage", line, "recovers without a restart");
  std::snprintf(line, sizeof line, "%.1f -> %.1f MiB (%+.1f%%), peak %.1f",
                static_cast<double>(r.rss_after_warmup) / 1048576.0,
                static_cast<double>(r.rss_end) / 1048576.0, (growth - 1) * 100,
                static_cast<double>(r.rss_peak) / 1048576.0);
  row("resident memory after warm-up -> end", line, "< +5%");
  md << "\nResident MiB each second from the start:";
  for (std::size_t i = 0; i < r.rss_each_second.size(); ++i) {
    std::snprintf(line, sizeof line, "%s%.0f", i % 20 == 0 ? "\n\n" : " ",
                  static_cast<double>(r.rss_each_second[i]) / 1048576.0);
    md << line;
  }
  md << "\n";
  if (bench::print_report(md.str(), out_path) != 0) return 1;
  const bool held = r.wrong == 0 && r.failed_outside == 0 && r.failed_in_outage > 0 &&
                    r.embedded == 0 && r.first_ok_after_outage_ms >= 0 && growth < 1.05;
  return held ? 0 : 1;
}

}  // namespace
}  // namespace hetcache

int run_bench(int argc, char** argv) {
  using namespace hetcache;
  bool quick = false, batches_only = false;
  int rounds_given = 0;
  std::string out_path, csv_path;
  double load_seconds = 0, warmup_seconds = 40;
  std::size_t connections = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (arg == "--out" && i + 1 < argc) {
      out_path = argv[++i];
    } else if (arg == "--batches-only") {
      batches_only = true;
    } else if (arg == "--rounds" && i + 1 < argc) {
      rounds_given = static_cast<int>(
          bench::parse_size("hetcache_io_latency_bench", "--rounds", argv[++i], 3, 201));
    } else if (arg == "--csv" && i + 1 < argc) {
      csv_path = argv[++i];
    } else if (arg == "--connections" && i + 1 < argc) {
      connections =
          bench::parse_size("hetcache_io_latency_bench", "--connections", argv[++i], 1, 64);
    } else if ((arg == "--load" || arg == "--warmup") && i + 1 < argc) {
      const double v = std::atof(argv[++i]);
      if (!(v >= 1 && v <= 3600)) {
        std::cerr << arg << " must be from 1 to 3600 seconds, got " << argv[i] << "\n";
        return 2;
      }
      (arg == "--load" ? load_seconds : warmup_seconds) = v;
    } else {
      std::cerr << "usage: hetcache_io_latency_bench [--quick] [--connections N] [--batches-only] "
                   "[--rounds R] [--out FILE.md] [--csv FILE]\n"
                   "       hetcache_io_latency_bench --load SECONDS [--warmup SECONDS] "
                   "[--out FILE.md]\n";
      return 2;
    }
  }
  if (load_seconds > 0) return load_test(load_seconds, warmup_seconds, out_path);
  const int rounds = rounds_given != 0 ? rounds_given : quick ? 15 : 61;
  const double seconds = quick ? 1.0 : 3.0;
  const std::size_t round_trips_us[] = {0, 500, 2000};
  const std::size_t batches[] = {10, 100, 1000};
  const std::size_t client_counts[] = {1, 16, 256, 1024};

  testing::RedisServerProcess redis;
  testing::LatencyProxy proxy(redis.port(), std::chrono::microseconds(0));
  auto resources = std::make_shared<Resources>();
  Caches caches = make_caches(proxy.port(), resources, connections);
  std::mt19937_64 rng(42);
  std::cerr << "storing " << kStored << " vectors\n";
  for (std::size_t first = 0; first < kStored; first += 1000) {
    std::vector<std::string> keys;
    for (std::size_t i = first; i < first + 1000; ++i) keys.push_back(key_of(i));
    caches["hybrid"].put_batch(keys, bench::random_matrix(keys.size(), kDim, first + 1, 1));
  }

  std::ostringstream md, csv;
  csv << "table,rtt_ms,size,mode,value,p50_ms,p99_ms\n";
  md << "# I/O across a network -- " << bench::cpu_model() << ", "
     << std::thread::hardware_concurrency() << " hardware threads\n\n"
     << "`hetcache_io_latency_bench" << (quick ? " --quick" : "")
     << "`: a real redis-server behind the latency proxy (tests/support/latency_proxy.hpp) "
        "adding the round trip shown; d = "
     << kDim << ", " << kStored << " stored keys, memory tier ~300 entries (reads reach Redis), "
     << connections << " Redis connection(s) per cache, default Resources ("
     << resources->stats().fiber_threads << " fiber threads, " << resources->stats().io_threads
     << " I/O threads, " << resources->stats().cpu_threads << " arena threads).\n";
  char line[512];
  for (const std::size_t rtt : round_trips_us) {
    proxy.set_delay(std::chrono::microseconds(rtt / 2));
    const double rtt_ms = static_cast<double>(rtt) / 1000.0;
    md << "\n## +" << rtt_ms << " ms round trip\n\n(a) one get_batch, median ms of " << rounds
       << " interleaved rounds\n\n| keys | fibers | tbb | sequential | hybrid | adaptive |\n"
       << "|---:|---:|---:|---:|---:|---:|\n";
    for (const std::size_t n : batches) {
      const auto t = one_batch(caches, n, rounds, rng);
      std::snprintf(line, sizeof line, "| %zu | %.2f | %.2f | %.2f | %.2f | %.2f |\n", n,
                    t.at("fibers"), t.at("tbb"), t.at("sequential"), t.at("hybrid"),
                    t.at("adaptive"));
      md << line;
      for (const auto& [mode, v] : t)
        csv << "batch," << rtt_ms << "," << n << "," << mode << "," << v << ",,\n";
      std::cerr << "  rtt " << rtt_ms << " ms, get_batch " << n << " done\n";
    }
    if (batches_only) continue;
    md << "\n(b) server: C clients, get_or_compute of 1-10 keys in a loop for " << seconds
       << " s per cell; requests/s, p50 / p99 ms (min-max requests per client)\n\n"
       << "| C | fibers | tbb | sequential | hybrid | adaptive |\n|---:|---|---|---|---|---|\n";
    for (const std::size_t c : client_counts) {
      md << "| " << c << " |";
      for (const std::string mode : kModes) {
        const ServerResult r = server(caches, *resources, mode, c, seconds, rng());
        std::snprintf(line, sizeof line, " %.0f/s, %.2f / %.2f ms (%zu-%zu)%s |", r.per_second,
                      r.p50_ms, r.p99_ms, r.slowest_client, r.fastest_client,
                      r.errors ? (" " + std::to_string(r.errors) + " errors").c_str() : "");
        md << line;
        csv << "server," << rtt_ms << "," << c << "," << mode << "," << r.per_second << ","
            << r.p50_ms << "," << r.p99_ms << "\n";
      }
      md << "\n";
      std::cerr << "  rtt " << rtt_ms << " ms, " << c << " clients done\n";
    }
  }
  if (!csv_path.empty() && !bench::write_file(csv_path, csv.str())) return 1;
  return bench::print_report(md.str(), out_path);
}

int main(int argc, char** argv) {
  return hetcache::bench::guarded_main("hetcache_io_latency_bench", run_bench, argc, argv);
}
