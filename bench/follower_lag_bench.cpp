// Follower lag: how long after a writer process acknowledges a batch a Follower cache in another
// process sees it. The writer (tests' hetcache_crash_writer) ingests 16-key batches of 64-d vectors
// as fast as it can; each sample takes the batch acknowledged last (its line read at once by a
// reader thread), then polls the follower (contains() every 1 ms, so reads catch up on their own
// every catch_up_interval) until the batch's first key is visible.
//   hetcache_follower_lag_bench WRITER DIR INTERVAL_MS SAMPLES
#include <hetcache/hetcache.hpp>

#include "bench_data.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

extern char** environ;
using Clock = std::chrono::steady_clock;

int run(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s WRITER DIR INTERVAL_MS SAMPLES\n", argv[0]);
    return 2;
  }
  std::string writer_bin = argv[1];
  const std::string dir = argv[2];
  const long interval_ms = std::stol(argv[3]);
  const int samples = std::max(1, std::stoi(argv[4]));
  std::filesystem::remove_all(dir);
  {
    hetcache::CacheOptions o;
    o.dim = 64;
    o.durable = hetcache::RocksDbOptions{};
    o.durable->path = dir;
    hetcache::EmbeddingCache seed(o);
    seed.put("seed", std::vector<float>(64, 0.5f));
  }
  int fds[2];
  if (pipe(fds) != 0) return 1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<char*> args = {writer_bin.data(), const_cast<char*>(dir.c_str()),
                             (char*)"64",       (char*)"1",
                             (char*)"async",    nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, writer_bin.c_str(), &actions, nullptr, args.data(), environ) != 0) return 1;
  close(fds[1]);
  FILE* lines = fdopen(fds[0], "r");
  std::mutex m;
  long last_batch = -1;
  Clock::time_point last_at;
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    long b = 0;
    while (!stop && std::fscanf(lines, "%ld", &b) == 1) {
      std::lock_guard lock(m);
      last_batch = b;
      last_at = Clock::now();
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  hetcache::CacheOptions o;
  o.dim = 64;
  o.durable = hetcache::RocksDbOptions{};
  o.durable->path = dir;
  o.durable->mode = hetcache::OpenMode::Follower;
  o.durable->catch_up_interval = std::chrono::milliseconds(interval_ms);
  hetcache::EmbeddingCache follower(o);
  std::vector<double> lags;
  for (int s = 0; s < samples; ++s) {
    std::this_thread::sleep_for(std::chrono::milliseconds(137));
    long b;
    Clock::time_point at;
    {
      std::lock_guard lock(m);
      b = last_batch;
      at = last_at;
    }
    const std::string key = "b" + std::to_string(b) + "-0";
    while (!follower.contains(key)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    lags.push_back(std::chrono::duration<double, std::milli>(Clock::now() - at).count());
  }
  kill(pid, SIGKILL);
  stop = true;
  waitpid(pid, nullptr, 0);
  reader.join();
  std::sort(lags.begin(), lags.end());
  const auto q = [&](double p) {
    return lags[std::min(lags.size() - 1, std::size_t(p * double(lags.size())))];
  };
  std::printf("catch_up_interval %ld ms: %zu samples, lag p50 %.0f ms, p90 %.0f ms, max %.0f ms\n",
              interval_ms, lags.size(), q(0.5), q(0.9), lags.back());
  std::filesystem::remove_all(dir);
  return 0;
}

int main(int argc, char** argv) {
  return hetcache::bench::guarded_main("hetcache_follower_lag_bench", run, argc, argv);
}
