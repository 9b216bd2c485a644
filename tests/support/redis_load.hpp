// Test and benchmark tooling: a server-shaped load on a cache over Redis behind the latency proxy.
// `clients` fibers each send get_or_compute_async of 1-10 random stored keys in a loop, check every
// answer against the value the key was stored with, and time it. After `warmup`, the run measures
// for `measure`; halfway through, the proxy drops every connection for `outage`. The report says
// what a server needs to know: how many requests succeeded, failed inside the outage (expected:
// a StoreUnavailable error), failed outside it (never expected), came back wrong (never), the
// slowest answer (bounded by the store's timeouts: no request hangs), p50 / p99 outside the
// outage, the resident memory after warm-up and at the end, and how long after the outage the
// first request succeeded.
#pragma once

#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/latency_proxy.hpp"

namespace hetcache::testing {

struct LoadOptions {
  std::size_t clients = 1024;
  std::size_t stored = 20000;  // keys "load:<i>", each stored with load_value(key)
  std::chrono::milliseconds warmup{2000}, measure{4000}, outage{1000};
  // Errors are expected from the drop until this long after the outage ends (a request sent just
  // before the end can still be waiting for its reconnect).
  std::chrono::milliseconds grace{1500};
};

struct LoadReport {
  std::uint64_t ok = 0, failed_in_outage = 0, failed_outside = 0, wrong = 0, embedded = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;  // successful requests outside the outage
  std::uint64_t rss_after_warmup = 0, rss_peak = 0, rss_end = 0;  // bytes
  std::vector<std::uint64_t> rss_each_second;                     // from the start, bytes
  double first_ok_after_outage_ms = -1;  // from the outage's end; -1: none succeeded
  std::string first_unexpected_error;
  double per_second = 0;  // successful requests per second of the measured part
  std::uint64_t fewest_per_client = 0, most_per_client = 0;  // measured part, successes
};

inline std::uint64_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f != nullptr) {
    if (std::fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<std::uint64_t>(resident) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

// The value a load key is stored with: deterministic, never zero.
inline void load_value(std::string_view key, float* out, std::size_t dim) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (const char c : key) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  for (std::size_t j = 0; j < dim; ++j) {
    h = h * 6364136223846793005ull + 1442695040888963407ull;
    out[j] = static_cast<float>(static_cast<double>(h >> 40) / double(1u << 24)) + 0.25f;
  }
}

inline std::string load_key(std::size_t i) { return "load:" + std::to_string(i); }

// Latencies in buckets 2% wide from 1 us (allocated once: recording them must not grow memory,
// which the run watches).
struct LatencyHistogram {
  static constexpr std::size_t kBuckets = 1000;
  std::vector<std::uint32_t> counts = std::vector<std::uint32_t>(kBuckets, 0);
  static std::size_t bucket(double ms) {
    if (!(ms > 0.001)) return 0;
    return std::min(kBuckets - 1, static_cast<std::size_t>(std::log(ms / 0.001) / std::log(1.02)));
  }
  static double upper_ms(std::size_t b) { return 0.001 * std::pow(1.02, double(b + 1)); }
  void add(double ms) { ++counts[bucket(ms)]; }
  void merge(const LatencyHistogram& other) {
    for (std::size_t b = 0; b < kBuckets; ++b) counts[b] += other.counts[b];
  }
  std::uint64_t total() const {
    std::uint64_t n = 0;
    for (const auto c : counts) n += c;
    return n;
  }
  // The upper edge of the bucket holding the q-quantile (2% resolution).
  double quantile(double q) const {
    const std::uint64_t n = total();
    if (n == 0) return 0;
    const auto want = static_cast<std::uint64_t>(q * static_cast<double>(n - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < kBuckets; ++b) {
      seen += counts[b];
      if (seen >= want) return upper_ms(b);
    }
    return upper_ms(kBuckets - 1);
  }
};

// Stores every load key (through the cache, so through Redis).
inline void store_load_keys(EmbeddingCache& cache, std::size_t stored) {
  const std::size_t dim = cache.dim();
  for (std::size_t first = 0; first < stored; first += 1000) {
    std::vector<std::string> keys;
    for (std::size_t i = first; i < std::min(stored, first + 1000); ++i)
      keys.push_back(load_key(i));
    Matrix values(keys.size(), dim);
    for (std::size_t i = 0; i < keys.size(); ++i) load_value(keys[i], values.row(i), dim);
    cache.put_batch(keys, values.view());
  }
}

inline LoadReport run_load(EmbeddingCache& cache, LatencyProxy& proxy, const LoadOptions& o) {
  using Clock = std::chrono::steady_clock;
  const std::size_t dim = cache.dim();
  const auto start = Clock::now();
  const auto measured_from = start + o.warmup;
  const auto end = measured_from + o.measure;
  const auto drop_at = measured_from + o.measure / 2;
  const auto outage_end = drop_at + o.outage;
  std::atomic<std::uint64_t> embedded{0};
  const EmbedFn embed = [&embedded, dim](std::span<const std::string> keys) {
    embedded += keys.size();  // every key is stored: only a key Redis lost would come here
    Matrix m(keys.size(), dim);
    for (std::size_t i = 0; i < keys.size(); ++i) load_value(keys[i], m.row(i), dim);
    return m;
  };
  struct Client {
    LatencyHistogram latencies;  // successful, measured part, outside the outage
    std::uint64_t ok = 0, measured_ok = 0, failed_in_outage = 0, failed_outside = 0, wrong = 0;
    double max_ms = 0;
    double first_ok_after_outage_ms = -1;
    std::string unexpected;
  };
  std::vector<Client> clients(o.clients);
  std::vector<Future<void>> running;
  running.reserve(o.clients);
  for (std::size_t c = 0; c < o.clients; ++c) {
    running.push_back(cache.resources()->submit([&, c] {
      Client& me = clients[c];
      std::mt19937_64 rng(c * 7919 + 1);
      std::vector<std::string> keys;
      Matrix out(10, dim);
      std::vector<float> expected(dim);
      while (Clock::now() < end) {
        keys.clear();
        const std::size_t n = 1 + rng() % 10;
        for (std::size_t i = 0; i < n; ++i) keys.push_back(load_key(rng() % o.stored));
        const auto t0 = Clock::now();
        try {
          cache.get_or_compute_async(keys, MutableMatrixView(out.row(0), n, dim), embed).get();
          const auto t1 = Clock::now();
          const double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
          ++me.ok;
          me.max_ms = std::max(me.max_ms, ms);
          for (std::size_t i = 0; i < n; ++i) {
            load_value(keys[i], expected.data(), dim);
            if (!std::equal(expected.begin(), expected.end(), out.row(i))) ++me.wrong;
          }
          const bool in_outage = t1 >= drop_at && t0 < outage_end + o.grace;
          if (t0 >= measured_from && !in_outage) {
            me.latencies.add(ms);
            ++me.measured_ok;
          }
          if (t1 >= outage_end && me.first_ok_after_outage_ms < 0 && t0 >= outage_end)
            me.first_ok_after_outage_ms =
                std::chrono::duration<double, std::milli>(t1 - outage_end).count();
        } catch (const Error& e) {
          const auto t1 = Clock::now();
          if (t1 >= drop_at && t0 < outage_end + o.grace) {
            ++me.failed_in_outage;
          } else {
            if (me.unexpected.empty()) me.unexpected = e.what();
            ++me.failed_outside;
          }
          // A failed request is retried at once: a client that failed does not slow down.
        }
      }
    }));
  }
  LoadReport r;
  r.rss_each_second.reserve(
      static_cast<std::size_t>(
          std::chrono::duration_cast<std::chrono::seconds>(end - start).count()) +
      2);
  std::thread monitor([&] {
    bool dropped = false, warm = false;
    auto next_second = start;
    while (Clock::now() < end) {
      const auto now = Clock::now();
      const std::uint64_t rss = resident_bytes();
      if (!warm && now >= measured_from) {
        r.rss_after_warmup = r.rss_peak = rss;
        warm = true;
      }
      if (warm) r.rss_peak = std::max(r.rss_peak, rss);
      if (now >= next_second) {
        r.rss_each_second.push_back(rss);
        next_second += std::chrono::seconds(1);
      }
      if (!dropped && now >= drop_at) {
        proxy.drop_connections(std::chrono::duration_cast<std::chrono::milliseconds>(o.outage));
        dropped = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  for (auto& f : running) f.get();
  monitor.join();
  r.rss_end = resident_bytes();
  LatencyHistogram all;
  r.fewest_per_client = UINT64_MAX;
  for (const auto& c : clients) {
    r.ok += c.ok;
    r.failed_in_outage += c.failed_in_outage;
    r.failed_outside += c.failed_outside;
    r.wrong += c.wrong;
    r.max_ms = std::max(r.max_ms, c.max_ms);
    if (r.first_unexpected_error.empty()) r.first_unexpected_error = c.unexpected;
    all.merge(c.latencies);
    r.fewest_per_client = std::min(r.fewest_per_client, c.measured_ok);
    r.most_per_client = std::max(r.most_per_client, c.measured_ok);
    if (c.first_ok_after_outage_ms >= 0 &&
        (r.first_ok_after_outage_ms < 0 || c.first_ok_after_outage_ms < r.first_ok_after_outage_ms))
      r.first_ok_after_outage_ms = c.first_ok_after_outage_ms;
  }
  r.p50_ms = all.quantile(0.50);
  r.p99_ms = all.quantile(0.99);
  const double measured_s = std::chrono::duration<double>(o.measure - o.outage - o.grace).count();
  r.per_second = measured_s > 0 ? static_cast<double>(all.total()) / measured_s : 0;
  r.embedded = embedded.load();
  return r;
}

}  // namespace hetcache::testing
