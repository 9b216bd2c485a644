// Cache benchmark: batch get / put throughput of the memory tier, the RocksDB tier and the cache
// with both, against an unordered_map + shared_mutex cache and a real redis-server on loopback
// (pipelined MGET / SET through hiredis), all in one run on the same random vectors (d = 768).
//
//   hetcache_cache_bench [--out FILE.md] [--quick]
//
// Every number is the median of several timed repetitions; the machine's memcpy bandwidth is
// measured in the same run, since the memory tier's target is stated against it.
#include <hetcache/hetcache.hpp>

#include <hiredis/hiredis.h>
#include <sys/utsname.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench_data.hpp"
#include "cache/durable/rocksdb_store.hpp"
#include "cache/durable/value_format.hpp"
#include "machine_limits.hpp"
#include "redis_peer.hpp"

extern char** environ;

namespace hetcache::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kDim = 768;
constexpr std::size_t kRowBytes = kDim * sizeof(float);

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Runs `op` (one batch) repeatedly for ~min_seconds, `reps` times; median seconds per batch.
double time_batch(const std::function<void()>& op, int reps = 5, double min_seconds = 0.05) {
  std::vector<double> per_batch;
  for (int r = 0; r < reps; ++r) {
    std::size_t n = 0;
    const auto start = Clock::now();
    do {
      op();
      ++n;
    } while (seconds_since(start) < min_seconds);
    per_batch.push_back(seconds_since(start) / static_cast<double>(n));
  }
  return median(per_batch);
}

// --- the obvious baseline ---------------------------------------------------------------------
class MutexMapCache {
 public:
  void put_batch(const std::vector<std::string>& keys, MatrixView values) {
    std::unique_lock lock(mutex_);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      map_[keys[i]].assign(values.row(i), values.row(i) + kDim);
    }
  }
  std::size_t get_batch(const std::vector<std::string>& keys, MutableMatrixView out) const {
    std::shared_lock lock(mutex_);
    std::size_t hits = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const auto it = map_.find(keys[i]);
      if (it == map_.end()) continue;
      std::memcpy(out.row(i), it->second.data(), kRowBytes);
      ++hits;
    }
    return hits;
  }

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::vector<float>> map_;
};

struct Row {
  std::string system, op;
  std::size_t batch;
  double seconds_per_batch;
};

std::string machine_line() {
  utsname u{};
  uname(&u);
  return cpu_model() + ", " + std::to_string(std::thread::hardware_concurrency()) +
         " threads, Linux " + u.release;
}

int run(int argc, char** argv) {
  std::string out_path;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--out" && i + 1 < argc)
      out_path = argv[++i];
    else if (arg == "--quick")
      quick = true;
    else {
      std::cerr << "usage: hetcache_cache_bench [--out FILE.md] [--quick]\n";
      return 2;
    }
  }
  const std::size_t population = quick ? 20000 : 100000;
  const std::vector<std::size_t> batches = {1, 10, 100, 1000, 10000};
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);

  std::vector<std::string> keys(population);
  for (std::size_t i = 0; i < population; ++i)
    keys[i] = "doc:" + std::to_string(rng()) + ":" + std::to_string(i);
  Matrix values(population, kDim);
  for (std::size_t r = 0; r < population; ++r) {
    for (std::size_t c = 0; c < kDim; ++c) values(r, c) = uniform(rng);
  }
  auto sample = [&](std::size_t n) {
    std::vector<std::string> picked(n);
    for (auto& k : picked) k = keys[rng() % population];
    return picked;
  };
  auto rows_of = [&](const std::vector<std::string>& picked, std::size_t offset) {
    Matrix m(picked.size(), kDim);
    for (std::size_t i = 0; i < picked.size(); ++i)
      std::memcpy(m.row(i), values.row((i + offset) % population), kRowBytes);
    return m;
  };

  std::cerr << "machine: " << machine_line() << "\nmeasuring memcpy bandwidth...\n";
  const double memcpy_bw = measure_memcpy_bandwidth();
  std::vector<Row> rows;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("hetcache-cache-bench-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);

  // --- populate every system with the same data ---
  std::cerr << "populating " << population << " vectors of d=768 in each system...\n";
  CacheOptions memory_options;
  memory_options.dim = kDim;
  memory_options.max_bytes = std::size_t{4} << 30;
  EmbeddingCache memory_cache(memory_options);
  memory_cache.put_batch(keys, values.view());
  MutexMapCache baseline;
  baseline.put_batch(keys, values.view());
  CacheOptions durable_options = memory_options;
  durable_options.durable = RocksDbOptions{};
  durable_options.durable->path = (dir / "cache").string();
  EmbeddingCache durable_cache(durable_options);
  durable_cache.put_batch(keys, values.view());
  RocksDbOptions rocks_options;
  rocks_options.path = (dir / "rocksdb").string();
  cache::RocksDbStore rocks(rocks_options, kDim, StorageType::F32);
  {
    std::vector<std::string_view> views(keys.begin(), keys.end());
    for (std::size_t first = 0; first < population; first += 10000) {
      const std::size_t n = std::min<std::size_t>(10000, population - first);
      rocks.put_batch(std::span(views).subspan(first, n), values.row(first), values.stride(),
                      cache::kNeverExpires);
    }
  }
  RedisServer redis;
  std::vector<std::string> encoded(population);
  for (std::size_t i = 0; i < population; ++i)
    cache::encode_value(keys[i], values.row(i), kDim, cache::kNeverExpires, encoded[i]);
  for (std::size_t first = 0; first < population; first += 10000) {
    const std::size_t n = std::min<std::size_t>(10000, population - first);
    redis.set_batch({keys.begin() + first, keys.begin() + first + n},
                    {encoded.begin() + first, encoded.begin() + first + n});
  }

  // --- get_batch, one thread ---
  for (const std::size_t batch : batches) {
    std::cerr << "get_batch " << batch << "\n";
    const auto picked = sample(batch);
    Matrix out(batch, kDim);
    std::vector<std::string_view> views(picked.begin(), picked.end());
    cache::RocksDbStore::BatchRead read;
    rows.push_back({"hetcache memory", "get", batch,
                    time_batch([&] { memory_cache.get_batch(picked, out.mutable_view()); })});
    rows.push_back({"hetcache memory+RocksDB", "get", batch,
                    time_batch([&] { durable_cache.get_batch(picked, out.mutable_view()); })});
    rows.push_back({"RocksDB tier alone (warm)", "get", batch, time_batch([&] {
                      rocks.get_batch(views, out.data(), out.stride(), 0, read);
                    })});
    rows.push_back({"unordered_map+shared_mutex", "get", batch,
                    time_batch([&] { baseline.get_batch(picked, out.mutable_view()); })});
    rows.push_back({"Redis MGET (pipelined)", "get", batch,
                    time_batch([&] { redis.mget_batch(picked, out.mutable_view()); })});
  }
  // --- put_batch (overwrites of existing keys for the memory systems; RocksDB ingests) ---
  for (const std::size_t batch : batches) {
    std::cerr << "put_batch " << batch << "\n";
    const auto picked = sample(batch);
    const Matrix data = rows_of(picked, batch);
    std::vector<std::string_view> views(picked.begin(), picked.end());
    std::vector<std::string> encoded_batch(batch);
    for (std::size_t i = 0; i < batch; ++i)
      cache::encode_value(picked[i], data.row(i), kDim, cache::kNeverExpires, encoded_batch[i]);
    rows.push_back({"hetcache memory", "put", batch,
                    time_batch([&] { memory_cache.put_batch(picked, data.view()); })});
    rows.push_back({"hetcache memory+RocksDB", "put", batch,
                    time_batch([&] { durable_cache.put_batch(picked, data.view()); })});
    rows.push_back({"RocksDB tier alone (async WAL)", "put", batch, time_batch([&] {
                      rocks.put_batch(views, data.data(), data.stride(), cache::kNeverExpires);
                    })});
    rows.push_back({"unordered_map+shared_mutex", "put", batch,
                    time_batch([&] { baseline.put_batch(picked, data.view()); })});
    rows.push_back({"Redis SET (pipelined)", "put", batch,
                    time_batch([&] { redis.set_batch(picked, encoded_batch); })});
  }

  // --- 2-thread contention: two readers, and a reader beside a writer (reader throughput) ---
  struct Contention {
    std::string system, scenario;
    double reader_batches_per_s;
  };
  std::vector<Contention> contention;
  const auto contend =
      [&](const std::string& system, bool second_writes,
          const std::function<void(const std::vector<std::string>&, Matrix&)>& get,
          const std::function<void(const std::vector<std::string>&, const Matrix&)>& put) {
        std::vector<double> rates;
        for (int rep = 0; rep < 5; ++rep) {
          std::atomic<bool> stop{false};
          std::atomic<std::size_t> reader_batches{0};
          std::barrier start(2);
          auto reader = [&](unsigned seed, bool counted) {
            std::mt19937_64 local(seed);
            std::vector<std::string> picked(1000);
            for (auto& k : picked) k = keys[local() % population];
            Matrix out(1000, kDim);
            start.arrive_and_wait();
            while (!stop.load(std::memory_order_relaxed)) {
              get(picked, out);
              if (counted) reader_batches.fetch_add(1, std::memory_order_relaxed);
            }
          };
          auto writer = [&] {
            std::mt19937_64 local(99);
            std::vector<std::string> picked(1000);
            for (auto& k : picked) k = keys[local() % population];
            const Matrix data = rows_of(picked, 7);
            start.arrive_and_wait();
            while (!stop.load(std::memory_order_relaxed)) put(picked, data);
          };
          std::thread a(reader, 1u + rep, true);
          std::thread b =
              second_writes ? std::thread(writer) : std::thread(reader, 1000u + rep, true);
          const auto begin = Clock::now();
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
          stop = true;
          a.join();
          b.join();
          rates.push_back(static_cast<double>(reader_batches.load()) / seconds_since(begin));
        }
        contention.push_back(
            {system, second_writes ? "1 reader + 1 writer" : "2 readers", median(rates)});
      };
  std::cerr << "2-thread contention\n";
  for (const bool writes : {false, true}) {
    contend(
        "hetcache memory", writes,
        [&](const auto& k, Matrix& out) { memory_cache.get_batch(k, out.mutable_view()); },
        [&](const auto& k, const Matrix& data) { memory_cache.put_batch(k, data.view()); });
    contend(
        "unordered_map+shared_mutex", writes,
        [&](const auto& k, Matrix& out) { baseline.get_batch(k, out.mutable_view()); },
        [&](const auto& k, const Matrix& data) { baseline.put_batch(k, data.view()); });
  }

  // --- the report ---
  std::ostringstream md;
  const auto rate_of = [&](const std::string& system, const std::string& op, std::size_t batch) {
    for (const auto& r : rows) {
      if (r.system == system && r.op == op && r.batch == batch)
        return static_cast<double>(batch) / r.seconds_per_batch;
    }
    return 0.0;
  };
  char line[512];
  md << "# Cache benchmark\n\n";
  md << "- machine: " << machine_line() << "\n";
  md << "- d = 768 (3072 B payload per vector), " << population
     << " vectors in every system, random keys from that population, one thread unless noted\n";
  md << "- memcpy bandwidth (one thread, 512 MiB): " << std::to_string(memcpy_bw / 1e9).substr(0, 5)
     << " GB/s\n";
  md << "- medians of 5 repetitions of >= 50 ms each; RocksDB with async WAL, block cache 256 MiB; "
        "Redis "
     << "on loopback, no persistence, values in the same checksummed format, decoded and checked "
        "on get\n\n";
  md << "| system | op | batch | vectors/s | GB/s | us/batch |\n|---|---|---:|---:|---:|---:|\n";
  for (const auto& r : rows) {
    const double per_s = static_cast<double>(r.batch) / r.seconds_per_batch;
    std::snprintf(line, sizeof(line), "| %s | %s | %zu | %.3g | %.2f | %.1f |\n", r.system.c_str(),
                  r.op.c_str(), r.batch, per_s, per_s * kRowBytes / 1e9, r.seconds_per_batch * 1e6);
    md << line;
  }
  md << "\n## 2-thread contention (get_batch of 1000 keys; reader batches/s)\n\n| system | "
        "scenario | reader batches/s | vectors/s |\n|---|---|---:|---:|\n";
  for (const auto& c : contention) {
    std::snprintf(line, sizeof(line), "| %s | %s | %.0f | %.3g |\n", c.system.c_str(),
                  c.scenario.c_str(), c.reader_batches_per_s, c.reader_batches_per_s * 1000);
    md << line;
  }
  const auto contention_rate = [&](const std::string& system, const std::string& scenario) {
    for (const auto& c : contention)
      if (c.system == system && c.scenario == scenario) return c.reader_batches_per_s;
    return 0.0;
  };
  const double get1k = rate_of("hetcache memory", "get", 1000);
  md << "\n## Targets\n\n| target | measured | met |\n|---|---:|:---:|\n";
  const auto target = [&](const std::string& name, double value, double goal, const char* unit) {
    std::snprintf(line, sizeof(line), "| %s (goal >= %.3g%s) | %.3g%s | %s |\n", name.c_str(), goal,
                  unit, value, unit, value >= goal ? "yes" : "**no**");
    md << line;
  };
  target("memory get_batch 1k: payload GB/s / memcpy GB/s", get1k * kRowBytes / memcpy_bw, 0.5, "");
  target("memory get_batch 1k vs Redis MGET",
         get1k / rate_of("Redis MGET (pipelined)", "get", 1000), 10, "x");
  target("2 readers: hetcache vs unordered_map+shared_mutex",
         contention_rate("hetcache memory", "2 readers") /
             contention_rate("unordered_map+shared_mutex", "2 readers"),
         2, "x");
  target("reader beside a writer: hetcache vs unordered_map+shared_mutex",
         contention_rate("hetcache memory", "1 reader + 1 writer") /
             contention_rate("unordered_map+shared_mutex", "1 reader + 1 writer"),
         2, "x");
  target("RocksDB tier ingest, batch 10k, async WAL (vectors/s)",
         rate_of("RocksDB tier alone (async WAL)", "put", 10000), 200e3, "");
  target("RocksDB tier warm get_batch 10k (vectors/s)",
         rate_of("RocksDB tier alone (warm)", "get", 10000), 1e6, "");
  std::cout << md.str();
  if (!out_path.empty()) std::ofstream(out_path) << md.str();
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace hetcache::bench

int main(int argc, char** argv) {
  return hetcache::bench::guarded_main("hetcache_cache_bench", hetcache::bench::run, argc, argv);
}
