// The memory store's shard lock against std::shared_mutex: readers on 1 and 2 threads, each taking
// the shared lock of one of 64 shards at random, copying a row that stays in the core's cache (so
// the lock, not memory, is what is measured), and letting go; optionally one put in `--write-every`
// reads. Both locks run in the same process, interleaved round by round; the table shows medians.
//
//   hetcache_shard_lock_bench [--dim D] [--ops N] [--rounds R] [--write-every W]
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cache/memory/shard_lock.hpp"
#include "machine_limits.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kShards = 64;
constexpr std::size_t kRowsPerShard = 4;

template <class Lock>
struct alignas(64) Shard {
  mutable Lock lock;
  std::vector<float> rows;
};

// ns per operation for `threads` threads doing `ops` operations each.
template <class Lock>
double run(std::vector<Shard<Lock>>& shards, std::size_t threads, std::size_t ops,
           std::size_t dim, std::size_t write_every) {
  std::barrier ready(static_cast<std::ptrdiff_t>(threads + 1));
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::vector<float> out(dim);
      std::uint64_t x = 0x9E3779B97F4A7C15ull * (t + 1);
      ready.arrive_and_wait();
      for (std::size_t i = 0; i < ops; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Shard<Lock>& shard = shards[x % kShards];
        const std::size_t row = (x >> 32) % kRowsPerShard;
        if (write_every != 0 && i % write_every == write_every - 1) {
          std::unique_lock lock(shard.lock);
          std::memcpy(shard.rows.data() + row * dim, out.data(), dim * sizeof(float));
        } else {
          std::shared_lock lock(shard.lock);
          std::memcpy(out.data(), shard.rows.data() + row * dim, dim * sizeof(float));
        }
      }
    });
  }
  ready.arrive_and_wait();
  const auto start = Clock::now();
  for (std::thread& t : pool) t.join();
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
  return ns / static_cast<double>(ops);  // per op of one thread: equal to wall time per op
}

std::size_t arg(int argc, char** argv, std::string_view name, std::size_t fallback,
                std::size_t lo, std::size_t hi) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (name == argv[i]) {
      char* end = nullptr;
      const long long v = std::strtoll(argv[i + 1], &end, 10);
      if (*end != '\0' || v < static_cast<long long>(lo) || v > static_cast<long long>(hi)) {
        std::fprintf(stderr, "%s must be an integer in [%zu, %zu], got '%s'\n", argv[i], lo, hi,
                     argv[i + 1]);
        std::exit(2);
      }
      return static_cast<std::size_t>(v);
    }
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--help") {
      std::puts("usage: hetcache_shard_lock_bench [--dim D] [--ops N] [--rounds R] "
                "[--write-every W]");
      return 0;
    }
  }
  const std::size_t dim = arg(argc, argv, "--dim", 128, 1, 4096);
  const std::size_t ops = arg(argc, argv, "--ops", 2'000'000, 1000, 1'000'000'000);
  const std::size_t rounds = arg(argc, argv, "--rounds", 11, 1, 1000);
  const std::size_t write_every = arg(argc, argv, "--write-every", 0, 0, 1'000'000'000);

  std::vector<Shard<std::shared_mutex>> standard(kShards);
  std::vector<Shard<hetcache::cache::ShardLock>> striped(kShards);
  for (auto& s : standard) s.rows.assign(kRowsPerShard * dim, 0.5f);
  for (auto& s : striped) s.rows.assign(kRowsPerShard * dim, 0.5f);

  std::vector<double> results[2][2];  // [lock][threads - 1]
  for (std::size_t r = 0; r <= rounds; ++r) {  // round 0 warms up and is dropped
    for (std::size_t threads = 1; threads <= 2; ++threads) {
      const double a = run(standard, threads, ops, dim, write_every);
      const double b = run(striped, threads, ops, dim, write_every);
      if (r == 0) continue;
      results[0][threads - 1].push_back(a);
      results[1][threads - 1].push_back(b);
    }
  }
  std::printf("%s; %zu shards, d = %zu, %zu ops per thread, %zu rounds, %s\n\n",
              hetcache::bench::cpu_model().c_str(), kShards, dim, ops, rounds,
              write_every == 0 ? "reads only"
                               : ("one write every " + std::to_string(write_every)).c_str());
  std::puts(
      "| lock | 1 thread (ns/op) | 2 threads (ns/op per thread) | 2 threads / 1 (throughput) |");
  std::puts("|---|---|---|---|");
  const char* names[2] = {"std::shared_mutex", "ShardLock (striped readers)"};
  for (int l = 0; l < 2; ++l) {
    const double one = hetcache::bench::median(results[l][0]);
    const double two = hetcache::bench::median(results[l][1]);
    std::printf("| %s | %.1f | %.1f | %.2fx |\n", names[l], one, two, 2.0 * one / two);
  }
  return 0;
}
