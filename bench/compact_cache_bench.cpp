// hetcache_compact_cache_bench: one run, the same random rows in caches whose memory store keeps
// f32, f16, bf16 or int8 (CacheOptions::memory_storage): bytes per entry, the put_batch rate,
// get_batch of 1000 random keys (decoding), and search (Cosine, Tier::Cpu) in exact mode (compact
// caches over a RocksDB database in --dir that holds the f32 values exact mode re-scores from) and
// fast mode (memory only), against the f32 cache. Prints a markdown table.
//   hetcache_compact_cache_bench [--n N] [--dim D] [--runs R] [--dir DIR] [--out FILE]
// Columns: "B/entry" = stats().bytes / entries (row, bounds, key, index); "put s" = put_batch of
// all rows in chunks of 10k; "get ms" = get_batch of 1000 random keys; search "ms" = median per
// call; "same" = queries whose keys equal the f32 cache's; "recall" = fast mode's recall@k;
// "rescored/q" = f32 values read from the durable store per query.
#include <hetcache/hetcache.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bench_data.hpp"
#include "machine_limits.hpp"

namespace {

using hetcache::EmbeddingCache;
using hetcache::KeyHit;
using hetcache::Matrix;
using hetcache::ScoreMode;
using hetcache::StorageType;
using Results = std::vector<std::vector<KeyHit>>;

struct System {
  std::string name;
  StorageType type;
  ScoreMode mode;
  std::unique_ptr<EmbeddingCache> cache;
  double put_s = 0;
};

std::string key_of(std::size_t i) { return "key-" + std::to_string(i); }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::size_t same_queries(const Results& want, const Results& got) {
  std::size_t same = 0;
  for (std::size_t q = 0; q < want.size(); ++q) {
    bool equal = want[q].size() == got[q].size();
    for (std::size_t h = 0; equal && h < want[q].size(); ++h)
      equal = want[q][h].key == got[q][h].key;
    same += equal ? 1 : 0;
  }
  return same;
}

double recall(const Results& want, const Results& got) {
  std::size_t found = 0, total = 0;
  for (std::size_t q = 0; q < want.size(); ++q) {
    std::set<std::string> truth;
    for (const KeyHit& h : want[q]) truth.insert(h.key);
    for (const KeyHit& h : got[q]) found += truth.count(h.key);
    total += want[q].size();
  }
  return total == 0 ? 1.0 : static_cast<double>(found) / static_cast<double>(total);
}

int run(int argc, char** argv) {
  std::size_t n = 1000000, dim = 768;
  int runs = 7;
  std::string out_path, dir = std::filesystem::temp_directory_path() / "hetcache-compact-bench";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--n" && i + 1 < argc) {
      n = hetcache::bench::parse_size(argv[0], "--n", argv[++i], 1000, 20000000);
    } else if (a == "--dim" && i + 1 < argc) {
      dim = hetcache::bench::parse_size(argv[0], "--dim", argv[++i], 1, 65536);
    } else if (a == "--runs" && i + 1 < argc) {
      runs = static_cast<int>(hetcache::bench::parse_size(argv[0], "--runs", argv[++i], 1, 100));
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--out" && i + 1 < argc) {
      out_path = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: hetcache_compact_cache_bench [--n N] [--dim D] [--runs R] [--dir DIR] "
                   "[--out FILE]\n");
      return 2;
    }
  }
  if (std::filesystem::exists(dir)) {
    std::fprintf(stderr, "%s exists; give an empty --dir (the run removes it at the end)\n",
                 dir.c_str());
    return 2;
  }
  const hetcache::SimilarityEngine engine;
  const std::size_t threads = engine.cpu_threads();
  std::fprintf(stderr, "N=%zu d=%zu: data\n", n, dim);
  const Matrix rows = hetcache::bench::random_matrix(n, dim, 3000 + dim, threads);
  const Matrix queries = hetcache::bench::random_matrix(16, dim, 4000 + dim, threads);
  std::vector<std::string> keys(n);
  for (std::size_t i = 0; i < n; ++i) keys[i] = key_of(i);

  std::vector<System> systems;
  systems.push_back({"f32", StorageType::F32, ScoreMode::Exact, nullptr});
  for (const StorageType type : {StorageType::F16, StorageType::Bf16, StorageType::I8}) {
    const std::string name(hetcache::to_string(type));
    systems.push_back({name + " exact", type, ScoreMode::Exact, nullptr});
    systems.push_back({name + " fast", type, ScoreMode::Fast, nullptr});
  }
  for (System& s : systems) {
    hetcache::CacheOptions options;
    options.dim = dim;
    options.max_bytes = std::size_t{64} << 30;  // holds every row: no eviction
    options.memory_storage = s.type;
    options.search_mode = s.mode;
    if (s.type != StorageType::F32 && s.mode == ScoreMode::Exact) {
      options.durable = hetcache::RocksDbOptions{};
      options.durable->path = dir + "/" + std::string(hetcache::to_string(s.type));
    }
    std::fprintf(stderr, "filling %s\n", s.name.c_str());
    s.cache = std::make_unique<EmbeddingCache>(options);
    const auto start = std::chrono::steady_clock::now();
    constexpr std::size_t kChunk = 10000;
    for (std::size_t first = 0; first < n; first += kChunk) {
      const std::size_t count = std::min(kChunk, n - first);
      s.cache->put_batch(std::span<const std::string>(keys).subspan(first, count),
                         rows.view().slice(first, count));
    }
    s.put_s = seconds_since(start);
  }

  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line,
                "CPU: %s, %zu threads, ISA %s. N = %zu, d = %zu, Cosine, k = 10, search on "
                "Tier::Cpu, median of %d interleaved runs. Exact caches re-score from RocksDB "
                "(its block cache warm after the first run).\n\n",
                hetcache::bench::cpu_model().c_str(), threads,
                std::string(hetcache::to_string(engine.isa())).c_str(), n, dim, runs);
  out << line;

  // get_batch of 1000 random keys (the same keys for every cache).
  std::vector<std::string> sample;
  for (std::size_t i = 0; i < 1000; ++i) sample.push_back(key_of((i * 7919 + 13) % n));
  Matrix got(sample.size(), dim);
  std::vector<std::function<void()>> gets;
  for (System& s : systems)
    gets.push_back([&] { s.cache->get_batch(sample, got.mutable_view(), hetcache::Tier::Cpu); });
  std::fprintf(stderr, "get_batch\n");
  const std::vector<double> get_t = hetcache::bench::interleaved_medians(runs, gets);

  out << "| cache | B/entry | put s | get ms | Q | search ms | x f32 | same | recall | "
         "rescored/q |\n|---|---|---|---|---|---|---|---|---|---|\n";
  for (const std::size_t nq : {std::size_t{1}, std::size_t{16}}) {
    const hetcache::MatrixView q = queries.view().slice(0, nq);
    std::vector<Results> results(systems.size());
    std::vector<std::uint64_t> rescored_before(systems.size());
    for (std::size_t i = 0; i < systems.size(); ++i)
      rescored_before[i] = systems[i].cache->stats().rescored_keys;
    std::vector<std::function<void()>> searches;
    std::vector<int> calls(systems.size(), 0);
    for (std::size_t i = 0; i < systems.size(); ++i) {
      searches.push_back([&, i] {
        results[i] = systems[i].cache->search(q, 10, hetcache::Metric::Cosine, hetcache::Tier::Cpu);
        ++calls[i];
      });
    }
    std::fprintf(stderr, "search Q=%zu\n", nq);
    const std::vector<double> t = hetcache::bench::interleaved_medians(runs, searches);
    for (std::size_t i = 0; i < systems.size(); ++i) {
      const System& s = systems[i];
      const auto stats = s.cache->stats();
      const double per_query = static_cast<double>(stats.rescored_keys - rescored_before[i]) /
                               static_cast<double>(calls[i] * nq);
      std::snprintf(
          line, sizeof line,
          "| %s | %.0f | %.1f | %.2f | %zu | %.1f | %.2f | %zu/%zu | %.3f | %.0f |\n",
          s.name.c_str(), static_cast<double>(stats.bytes) / static_cast<double>(stats.entries),
          s.put_s, get_t[i] * 1e3, nq, t[i] * 1e3, t[0] / t[i],
          same_queries(results[0], results[i]), nq, recall(results[0], results[i]), per_query);
      out << line;
    }
  }
  systems.clear();
  std::filesystem::remove_all(dir);
  return hetcache::bench::print_report(out.str(), out_path);
}

}  // namespace

int main(int argc, char** argv) {
  return hetcache::bench::guarded_main("hetcache_compact_cache_bench", run, argc, argv);
}
