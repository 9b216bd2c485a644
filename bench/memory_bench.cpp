// hetcache_memory_bench: the memory store at scale, through the public API, beside what the
// hardware allows and the obvious baseline, all in one run on the same random (never zero) data:
//   raw 4K     a loop copying the batch's random rows out of one n x d buffer on 4 KiB pages
//   raw huge   the same loop on a buffer on 2 MiB transparent huge pages (MADV_HUGEPAGE)
//   raw huge, prefetched   the same loop prefetching every line of the row 4 rows ahead: what
//              the memory system delivers when a batch's misses overlap
//   map        std::unordered_map<std::string, std::vector<float>> + memcpy, one shared lock per
//              batch (readers share it)
//   hetcache   a memory-only EmbeddingCache, get_batch on the calling thread (Tier::Sequential)
//   hetcache, one get per key   the same cache read with get(key, span): one shard lock per key
// Each reads batches of K random keys (rows) with 1 and 2 threads at once; a round runs every
// system and thread count once, interleaved, and the table shows each one's median over the rounds
// in vectors/s. Memory: the growth of the process's resident set while each store was filled,
// against the payload (n x d floats). When all four do not fit in three quarters of the available
// memory, each system is built, measured and freed in turn (not interleaved; the report says so).
//   hetcache_memory_bench [--n N] [--dim D] [--batch K] [--rounds R] [--out FILE.md]
#include <hetcache/hetcache.hpp>

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <shared_mutex>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bench_data.hpp"
#include "machine_limits.hpp"

namespace hetcache::bench {
namespace {

constexpr std::size_t kBatchesPerRound = 8;  // per thread
constexpr std::size_t kMaxThreads = 2;

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// Anonymous memory of the process backed by transparent huge pages.
std::size_t huge_page_bytes() {
  std::ifstream rollup("/proc/self/smaps_rollup");
  std::string name;
  while (rollup >> name) {
    std::size_t kib = 0;
    if (name == "AnonHugePages:" && rollup >> kib) return kib << 10;
  }
  return 0;
}

std::size_t available_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string name;
  std::size_t kib = 0;
  std::string unit;
  while (meminfo >> name >> kib >> unit) {
    if (name == "MemAvailable:") return kib << 10;
  }
  return 0;
}

// n x dim random floats in an anonymous mapping with or without transparent huge pages.
class RawRows {
 public:
  RawRows(std::size_t n, std::size_t dim, bool huge) : dim_(dim) {
    constexpr std::size_t kHuge = std::size_t{2} << 20;
    bytes_ = (n * dim * sizeof(float) + kHuge - 1) / kHuge * kHuge;
    void* p = mmap(nullptr, bytes_ + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    base_ = p;
    data_ = reinterpret_cast<float*>((reinterpret_cast<std::uintptr_t>(p) + kHuge - 1) / kHuge *
                                     kHuge);
    madvise(data_, bytes_, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    const Matrix chunk = random_matrix(4096, dim, 3, 2);
    for (std::size_t r = 0; r < n; ++r)
      std::memcpy(data_ + r * dim, chunk.row(r % 4096), dim * sizeof(float));
  }
  ~RawRows() { munmap(base_, bytes_ + (std::size_t{2} << 20)); }
  RawRows(const RawRows&) = delete;
  RawRows& operator=(const RawRows&) = delete;
  void get_batch(std::span<const std::size_t> rows, float* out) const {
    for (std::size_t i = 0; i < rows.size(); ++i)
      std::memcpy(out + i * dim_, data_ + rows[i] * dim_, dim_ * sizeof(float));
  }
  void get_batch_prefetched(std::span<const std::size_t> rows, float* out) const {
    constexpr std::size_t kAhead = 4;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (i + kAhead < rows.size()) {
        const char* next = reinterpret_cast<const char*>(data_ + rows[i + kAhead] * dim_);
        for (std::size_t b = 0; b < dim_ * sizeof(float); b += 64) __builtin_prefetch(next + b);
      }
      std::memcpy(out + i * dim_, data_ + rows[i] * dim_, dim_ * sizeof(float));
    }
  }

 private:
  void* base_ = nullptr;
  float* data_ = nullptr;
  std::size_t bytes_ = 0;
  std::size_t dim_;
};

class MutexMap {
 public:
  explicit MutexMap(std::size_t dim) : dim_(dim) {}
  void put_batch(std::span<const std::string> keys, MatrixView values) {
    std::unique_lock lock(mutex_);
    for (std::size_t i = 0; i < keys.size(); ++i)
      map_[keys[i]].assign(values.row(i), values.row(i) + dim_);
  }
  std::size_t get_batch(std::span<const std::string> keys, float* out) const {
    std::shared_lock lock(mutex_);
    std::size_t hits = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const auto it = map_.find(keys[i]);
      if (it == map_.end()) continue;
      std::memcpy(out + i * dim_, it->second.data(), dim_ * sizeof(float));
      ++hits;
    }
    return hits;
  }

 private:
  std::size_t dim_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::vector<float>> map_;
};

// What one thread reads in one round: kBatchesPerRound batches of random rows and their keys.
struct Work {
  std::vector<std::vector<std::size_t>> rows;
  std::vector<std::vector<std::string>> keys;
};

struct System {
  using Read =
      std::function<bool(std::span<const std::size_t>, std::span<const std::string>, float*)>;
  System() = default;
  System(std::string n, std::function<void()> b, std::function<void()> r, Read rd)
      : name(std::move(n)), build(std::move(b)), release(std::move(r)), read(std::move(rd)) {}
  std::string name;
  std::function<void()> build;  // fills it (timed only for the report's fill rate)
  std::function<void()> release;
  // Reads one batch on the calling thread into out (batch x dim); false when a key is missing.
  Read read;
  double fill_seconds = 0;
  std::size_t resident = 0;  // growth of the resident set while it was filled
  std::size_t huge = 0;      // growth of its part on transparent huge pages
  std::vector<std::vector<double>> rates;  // [threads - 1][round], vectors/s
};

// Runs `threads` threads, each reading its batches of `work`; returns vectors/s over the wall time
// from the first thread's start to the last one's end.
// Each thread copies into its own `outs[t]`, allocated and touched before any timing.
double timed_round(System& system, std::size_t threads, const std::vector<Work>& work,
                   std::size_t batch, std::vector<std::vector<float>>& outs) {
  using Clock = std::chrono::steady_clock;
  std::vector<Clock::time_point> starts(threads), ends(threads);
  std::vector<int> ok(threads, 1);
  std::barrier ready(static_cast<std::ptrdiff_t>(threads));
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.arrive_and_wait();
      starts[t] = Clock::now();
      for (std::size_t b = 0; b < kBatchesPerRound; ++b)
        ok[t] &= system.read(work[t].rows[b], work[t].keys[b], outs[t].data()) ? 1 : 0;
      ends[t] = Clock::now();
    });
  }
  for (auto& th : pool) th.join();
  if (std::count(ok.begin(), ok.end(), 0) != 0)
    throw std::runtime_error(system.name + ": a key it was given is missing");
  const double s = std::chrono::duration<double>(*std::max_element(ends.begin(), ends.end()) -
                                                 *std::min_element(starts.begin(), starts.end()))
                       .count();
  return static_cast<double>(threads * kBatchesPerRound * batch) / s;
}

int run(int argc, char** argv) {
  std::size_t n = 1'000'000, dim = 768, batch = 1000, rounds = 21;
  std::string out_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    const char* p = "hetcache_memory_bench";
    if (a == "--n" && has_value) {
      n = parse_size(p, "--n", argv[++i], 1, 100'000'000);
    } else if (a == "--dim" && has_value) {
      dim = parse_size(p, "--dim", argv[++i], 1, 8192);
    } else if (a == "--batch" && has_value) {
      batch = parse_size(p, "--batch", argv[++i], 1, 1'000'000);
    } else if (a == "--rounds" && has_value) {
      rounds = parse_size(p, "--rounds", argv[++i], 1, 10'000);
    } else if (a == "--out" && has_value) {
      out_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: hetcache_memory_bench [--n N] [--dim D] [--batch K] "
                           "[--rounds R] [--out FILE.md]\n");
      return 2;
    }
  }
  const double payload = static_cast<double>(n) * static_cast<double>(dim) * sizeof(float);
  std::vector<std::string> keys;
  keys.reserve(n);
  for (std::size_t i = 0; i < n; ++i) keys.push_back("doc:" + std::to_string(i));
  constexpr std::size_t kFill = 8192;
  const Matrix values = random_matrix(kFill, dim, 7, 2);
  const auto fill = [&](auto&& put_batch) {
    for (std::size_t first = 0; first < n; first += kFill) {
      const std::size_t count = std::min(kFill, n - first);
      put_batch(std::span<const std::string>(keys.data() + first, count),
                values.view().slice(0, count));
    }
  };

  std::unique_ptr<RawRows> raw4k, raw_huge;
  std::unique_ptr<MutexMap> map;
  std::unique_ptr<EmbeddingCache> cache;
  enum { kRaw4k, kRawHuge, kRawPrefetched, kMap, kHetcache, kHetcacheGet, kSystems };
  std::vector<System> systems(kSystems);
  systems[kRaw4k] = {"raw copy, 4 KiB pages",
                     [&] { raw4k = std::make_unique<RawRows>(n, dim, false); },
                     [&] { raw4k.reset(); },
                     [&](auto rows, auto, float* out) { return raw4k->get_batch(rows, out), true; }};
  systems[kRawHuge] = {
      "raw copy, huge pages", [&] { raw_huge = std::make_unique<RawRows>(n, dim, true); },
      [&] { raw_huge.reset(); },
      [&](auto rows, auto, float* out) { return raw_huge->get_batch(rows, out), true; }};
  // Reads raw huge's buffer: built after it and released before it.
  systems[kRawPrefetched] = {"raw copy, huge pages, prefetched", [] {}, [] {},
                             [&](auto rows, auto, float* out) {
                               return raw_huge->get_batch_prefetched(rows, out), true;
                             }};
  systems[kMap] = {"unordered_map + memcpy",
                [&] {
                  map = std::make_unique<MutexMap>(dim);
                  fill([&](auto k, MatrixView v) { map->put_batch(k, v); });
                },
                [&] { map.reset(); },
                [&](auto, auto k, float* out) { return map->get_batch(k, out) == k.size(); }};
  systems[kHetcache] = {"hetcache memory store",
                [&] {
                  CacheOptions options;
                  options.dim = dim;
                  options.max_bytes = n * (dim * sizeof(float) + 256) + (std::size_t{64} << 20);
                  cache = std::make_unique<EmbeddingCache>(options);
                  fill([&](auto k, MatrixView v) { cache->put_batch(k, v); });
                },
                [&] { cache.reset(); },
                [&](auto, auto k, float* out) {
                  const auto found =
                      cache->get_batch(k, MutableMatrixView(out, k.size(), dim, dim),
                                       Tier::Sequential);
                  return std::count(found.begin(), found.end(), 1) ==
                         static_cast<long>(k.size());
                }};
  // Reads the batch cache's store: built after it and released before it.
  systems[kHetcacheGet] = {"hetcache, one get per key", [] {}, [] {},
                           [&](auto, auto k, float* out) {
                             bool all = true;
                             for (std::size_t i = 0; i < k.size(); ++i)
                               all &= cache->get(k[i], std::span<float>(out + i * dim, dim));
                             return all;
                           }};
  // Raw buffers ~1x the payload each, the map and the cache ~1.1x.
  const bool together = 4.5 * payload < 0.75 * static_cast<double>(available_bytes());

  std::vector<std::vector<float>> outs(kMaxThreads, std::vector<float>(batch * dim, 1.0f));
  std::mt19937_64 rng(11);
  const auto draw_work = [&] {
    std::vector<Work> work(kMaxThreads);
    for (auto& w : work) {
      w.rows.resize(kBatchesPerRound);
      w.keys.resize(kBatchesPerRound);
      for (std::size_t b = 0; b < kBatchesPerRound; ++b) {
        for (std::size_t i = 0; i < batch; ++i) {
          w.rows[b].push_back(rng() % n);
          w.keys[b].push_back(keys[w.rows[b].back()]);
        }
      }
    }
    return work;
  };
  const auto build = [&](System& s) {
    std::fprintf(stderr, "building %s: %zu x %zu...\n", s.name.c_str(), n, dim);
    const std::size_t before = resident_bytes(), huge_before = huge_page_bytes();
    const auto start = std::chrono::steady_clock::now();
    s.build();
    s.fill_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    s.resident = resident_bytes() - before;
    s.huge = huge_page_bytes() - huge_before;
    s.rates.assign(kMaxThreads, {});
  };
  // Every system reads the same rows in a round; each thread count reads other rows than the
  // other's, so one run never finds the rows the run before it left in the caches.
  const auto measure = [&](const std::vector<System*>& active) {
    for (std::size_t r = 0; r <= rounds; ++r) {  // round 0 warms up and is dropped
      std::vector<std::vector<Work>> work;
      for (std::size_t t = 1; t <= kMaxThreads; ++t) work.push_back(draw_work());
      for (System* s : active) {
        for (std::size_t t = 1; t <= kMaxThreads; ++t) {
          const double rate = timed_round(*s, t, work[t - 1], batch, outs);
          if (r > 0) s->rates[t - 1].push_back(rate);
        }
      }
    }
  };
  const std::vector<std::vector<int>> groups =
      together ? std::vector<std::vector<int>>{{kRaw4k, kRawHuge, kRawPrefetched, kMap, kHetcache,
                                                kHetcacheGet}}
               : std::vector<std::vector<int>>{{kRaw4k}, {kRawHuge, kRawPrefetched}, {kMap},
                                               {kHetcache, kHetcacheGet}};
  for (const auto& group : groups) {
    std::vector<System*> active;
    for (const int i : group) build(systems[i]), active.push_back(&systems[i]);
    measure(active);
    for (auto it = group.rbegin(); it != group.rend(); ++it) systems[*it].release();
    malloc_trim(0);  // so the next group's growth of the resident set is its own
  }

  std::ostringstream md;
  md << "### N = " << n << ", d = " << dim << ", get_batch of " << batch << " random keys\n\n"
     << cpu_model() << "; " << rounds << " rounds of " << kBatchesPerRound
     << " batches per thread, "
     << (together ? "all systems interleaved in each round"
                  : "each system built, measured and freed in turn (not enough memory for all)")
     << "; payload " << static_cast<long>(payload / (1 << 20)) << " MiB.\n\n"
     << "| system | 1 thread (vectors/s) | 2 threads | 2 / 1 | 1 thread / raw huge | "
        "1 thread / prefetched | resident / payload | on huge pages | fill (vectors/s) |\n"
        "|---|---|---|---|---|---|---|---|---|\n";
  const double raw_huge_rate = median(systems[kRawHuge].rates[0]);
  const double prefetched_rate = median(systems[kRawPrefetched].rates[0]);
  char line[512];
  for (const auto& s : systems) {
    const double one = median(s.rates[0]), two = median(s.rates[1]);
    std::snprintf(line, sizeof line, "| %s | %.3gM | %.3gM | %.2fx | %.2f | %.2f | ",
                  s.name.c_str(), one / 1e6, two / 1e6, two / one, one / raw_huge_rate,
                  one / prefetched_rate);
    md << line;
    if (&s == &systems[kRawPrefetched] || &s == &systems[kHetcacheGet]) {
      md << (&s == &systems[kRawPrefetched] ? "(raw huge's) | | - |\n" : "(the store's) | | - |\n");
      continue;
    }
    std::snprintf(line, sizeof line, "%.2fx | %.0f%% | ", static_cast<double>(s.resident) / payload,
                  100.0 * static_cast<double>(s.huge) / static_cast<double>(s.resident));
    md << line;
    if (&s == &systems[kRaw4k] || &s == &systems[kRawHuge]) {
      md << "- |\n";  // a buffer, not a store
    } else {
      std::snprintf(line, sizeof line, "%.3gM |\n", static_cast<double>(n) / s.fill_seconds / 1e6);
      md << line;
    }
  }
  const double ours = median(systems[kHetcache].rates[0]);
  const double theirs = median(systems[kMap].rates[0]);
  std::snprintf(line, sizeof line, "\nhetcache / unordered_map: %.2fx (1 thread), %.2fx (2 threads)\n",
                ours / theirs, median(systems[kHetcache].rates[1]) / median(systems[kMap].rates[1]));
  md << line;
  return print_report(md.str(), out_path);
}

}  // namespace
}  // namespace hetcache::bench

int main(int argc, char** argv) {
  return hetcache::bench::guarded_main("hetcache_memory_bench", hetcache::bench::run, argc, argv);
}
