#include "scheduler/calibration.hpp"

#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

namespace hetcache::scheduler {
namespace {

constexpr const char* kModelVersion = "model-v4";

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(colon + 1);
        name.erase(0, name.find_first_not_of(' '));
        return name;
      }
    }
  }
  return "unknown cpu";
}

// Median wall times, in microseconds, of `runs` calls of each of `fns`, the calls interleaved
// (fns[0], fns[1], ..., fns[0], ...): a burst of contention from elsewhere on the machine (a
// neighbour on the same host, another process) then slows every tier's runs alike instead of one
// tier's, so the comparison between tiers -- what the model decides by -- survives it.
std::vector<double> interleaved_median_us(int runs, const std::vector<std::function<void()>>& fns) {
  std::vector<std::vector<double>> times(fns.size());
  for (int i = 0; i < runs; ++i) {
    for (std::size_t f = 0; f < fns.size(); ++f) {
      const auto start = std::chrono::steady_clock::now();
      fns[f]();
      times[f].push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
              .count());
    }
  }
  std::vector<double> medians;
  for (auto& t : times) {
    std::nth_element(t.begin(), t.begin() + runs / 2, t.end());
    medians.push_back(t[runs / 2]);
  }
  return medians;
}

// Median wall time of `runs` calls, in microseconds.
double median_us(int runs, std::function<void()> fn) {
  return interleaved_median_us(runs, {std::move(fn)})[0];
}

// A model from a small and a large run: the overhead is what the small run cannot explain.
TierModel fit(double small_units, double small_us, double large_units, double large_us) {
  TierModel m;
  m.usable = true;
  m.us_per_unit = std::max((large_us - small_us) / (large_units - small_units), 1e-9);
  m.overhead_us = std::max(small_us - small_units * m.us_per_unit, 0.05);
  return m;
}

std::vector<float> random_floats(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = uniform(rng);
  return v;
}

}  // namespace

ModelOp model_op(OpKind op) noexcept {
  switch (op) {
    case OpKind::Get:
    case OpKind::GetBatch:
      return ModelOp::GetBatch;
    case OpKind::Put:
    case OpKind::PutBatch:
      return ModelOp::PutBatch;
    case OpKind::Similarity:
      return ModelOp::Similarity;
  }
  return ModelOp::GetBatch;
}

double work_units(const Work& w) noexcept {
  switch (model_op(w.op)) {
    case ModelOp::Similarity:
      return static_cast<double>(w.queries) * static_cast<double>(w.items) *
             static_cast<double>(w.dim);
    case ModelOp::GetBatch:
      return static_cast<double>(w.items);
    case ModelOp::PutBatch:
      return static_cast<double>(w.items) * static_cast<double>(std::max<std::size_t>(w.dim, 1));
  }
  return 0.0;
}

std::string Calibration::serialize() const {
  std::ostringstream o;
  o.precision(17);
  o << "machine " << machine_key << '\n';
  o << "link_gb_per_s " << link_gb_per_s << '\n';
  o << "seconds " << seconds << '\n';
  for (int op = 0; op < kModelOps; ++op) {
    for (int t = 0; t < kTiers; ++t) {
      const TierModel& m = models[op][t];
      if (!m.usable) continue;
      o << "model " << op << ' ' << t << ' ' << m.overhead_us << ' ' << m.us_per_unit << '\n';
    }
  }
  o << "end\n";
  return o.str();
}

std::optional<Calibration> Calibration::parse(const std::string& text) {
  Calibration c;
  std::istringstream in(text);
  std::string line;
  bool ended = false, has_machine = false;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    if (name == "machine") {
      c.machine_key = line.size() > 8 ? line.substr(8) : "";
      has_machine = true;
    } else if (name == "link_gb_per_s") {
      if (!(fields >> c.link_gb_per_s)) return std::nullopt;
    } else if (name == "seconds") {
      if (!(fields >> c.seconds)) return std::nullopt;
    } else if (name == "model") {
      int op = -1, t = -1;
      TierModel m;
      if (!(fields >> op >> t >> m.overhead_us >> m.us_per_unit)) return std::nullopt;
      if (op < 0 || op >= kModelOps || t < 0 || t >= kTiers) return std::nullopt;
      if (!(m.overhead_us >= 0.0 && m.us_per_unit > 0.0 && std::isfinite(m.overhead_us) &&
            std::isfinite(m.us_per_unit)))
        return std::nullopt;
      m.usable = true;
      c.models[op][t] = m;
    } else if (name == "end") {
      ended = true;
    } else if (!name.empty()) {
      return std::nullopt;
    }
  }
  if (!ended || !has_machine) return std::nullopt;
  return c;
}

Calibration estimated_calibration(const std::string& key, std::size_t cpu_threads, bool gpu) {
  Calibration c;
  c.machine_key = key;
  const double threads = static_cast<double>(std::max<std::size_t>(cpu_threads, 1));
  const auto set = [&](ModelOp op, Tier t, double overhead_us, double us_per_unit) {
    c.model(op, t) = TierModel{true, overhead_us, us_per_unit};
  };
  // ~20 G multiply-adds/s per core with SIMD, tens of microseconds to wake a thread pool.
  set(ModelOp::Similarity, Tier::Sequential, 1.0, 5e-5);
  set(ModelOp::Similarity, Tier::Cpu, 20.0, 5e-5 / threads);
  if (gpu) {
    set(ModelOp::Similarity, Tier::Gpu, 60.0, 5e-8);
    c.link_gb_per_s = 12.0;
  }
  set(ModelOp::GetBatch, Tier::Sequential, 0.2, 0.3);
  set(ModelOp::GetBatch, Tier::Fiber, 15.0, 0.3 / threads);
  set(ModelOp::GetBatch, Tier::Cpu, 15.0, 0.3 / threads);
  set(ModelOp::PutBatch, Tier::Sequential, 0.5, 1e-3);
  set(ModelOp::PutBatch, Tier::Fiber, 15.0, 1e-3 / threads);
  set(ModelOp::PutBatch, Tier::Cpu, 15.0, 1e-3 / threads);
  return c;
}

Calibration measure_calibration(const std::string& key, const SchedulerConfig& config,
                                const SimilarityEngine& engine, bool gpu) {
  const auto started = std::chrono::steady_clock::now();
  Calibration c;
  c.machine_key = key;

  // Similarity: Q x N x d = 1 x 64 x 256 (the calling thread's overhead), 1 x 2048 x 256 (a
  // parallel run that is mostly overhead), 16 x 8192 x 256 (throughput).
  constexpr std::size_t kDim = 256, kRows = 8192, kQueries = 16;
  const auto candidates = random_floats(kRows * kDim, 1);
  const auto queries = random_floats(kQueries * kDim, 2);
  const MatrixView all(candidates.data(), kRows, kDim), few(candidates.data(), 64, kDim);
  const MatrixView some(candidates.data(), 2048, kDim);
  const MatrixView q_all(queries.data(), kQueries, kDim), q_one(queries.data(), 1, kDim);
  const double large_units = double(kQueries) * kRows * kDim;
  {
    const auto search = [&](const MatrixView& q, const MatrixView& set, Tier tier) {
      return [&engine, q, set, tier] { (void)engine.search(q, set, 10, Metric::Dot, tier); };
    };
    const std::vector<double> small = interleaved_median_us(
        15, {search(q_one, few, Tier::Sequential), search(q_one, some, Tier::Cpu)});
    const std::vector<double> large = interleaved_median_us(
        9, {search(q_all, all, Tier::Sequential), search(q_all, all, Tier::Cpu)});
    c.model(ModelOp::Similarity, Tier::Sequential) =
        fit(double(few.rows()) * kDim, small[0], large_units, large[0]);
    c.model(ModelOp::Similarity, Tier::Cpu) =
        fit(double(some.rows()) * kDim, small[1], large_units, large[1]);
  }
  if (gpu) {
    try {
      const DeviceMatrix on_device = engine.upload(all);
      (void)engine.search(q_one, on_device, 10, Metric::Dot);  // warm-up: kernels, scratch
      const double small =
          median_us(9, [&] { (void)engine.search(q_one, few, 10, Metric::Dot, Tier::Gpu); });
      const std::vector<float> wide = random_floats(256 * kDim, 3);
      const MatrixView q_wide(wide.data(), 256, kDim);
      const double large =
          median_us(5, [&] { (void)engine.search(q_wide, on_device, 10, Metric::Dot); });
      const double streamed =
          median_us(5, [&] { (void)engine.search(q_wide, all, 10, Metric::Dot, Tier::Gpu); });
      c.model(ModelOp::Similarity, Tier::Gpu) =
          fit(64.0 * kDim, small, 256.0 * kRows * kDim, large);
      const double bytes = double(kRows) * kDim * sizeof(float);
      c.link_gb_per_s = std::clamp(bytes / std::max(streamed - large, 1.0) / 1e3, 1.0, 100.0);
    } catch (const Error&) {
      // A GPU that fails here is left out of the model; the search itself reports the error.
    }
  }

  // Cache I/O on a memory store of 64 MiB -- twice the largest L3 we run on, as a serving cache
  // is -- read at random keys: 1 key (overhead) and 4096 keys (per key); puts of 4096 keys.
  constexpr std::size_t kCacheKeys = 65536, kBatchKeys = 4096;
  CacheOptions options;
  options.dim = kDim;
  options.max_entries = kCacheKeys;
  options.scheduler.optimal_batch_size = config.optimal_batch_size;
  options.resources = engine.resources();
  EmbeddingCache cache(options);
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < kCacheKeys; ++i) keys.push_back("calibration-" + std::to_string(i));
  const MatrixView values(candidates.data(), kRows, kDim);
  for (std::size_t first = 0; first < kCacheKeys; first += kRows)
    cache.put_batch(std::span<const std::string>(keys).subspan(first, kRows), values);
  std::vector<std::string> random_keys(kBatchKeys);
  std::mt19937_64 rng(5);
  for (auto& k : random_keys) k = keys[rng() % kCacheKeys];
  std::vector<float> out(kBatchKeys * kDim);
  const MutableMatrixView out_all(out.data(), kBatchKeys, kDim);
  const std::span<const std::string> all_keys(random_keys);
  const MatrixView put_values(candidates.data(), kBatchKeys, kDim);
  // Fiber and Cpu split a batch into chunks: their small run has 4 chunks, so the fit sees the
  // cost of going parallel (a batch of one chunk runs like Sequential; the cost model knows).
  const std::size_t chunk = config.optimal_batch_size;
  const std::size_t small_keys = std::min(kBatchKeys / 2, 4 * chunk);
  constexpr Tier kIoTiers[] = {Tier::Sequential, Tier::Fiber, Tier::Cpu};
  std::vector<std::function<void()>> small_gets, large_gets, small_puts, large_puts;
  const auto small_n = [&](Tier tier) { return tier == Tier::Sequential ? 1 : small_keys; };
  for (const Tier tier : kIoTiers) {
    const std::size_t n = small_n(tier);
    const std::span<const std::string> small_batch(random_keys.data(), n);
    const MutableMatrixView small_out(out.data(), n, kDim);
    const MatrixView small_values(candidates.data(), n, kDim);
    small_gets.emplace_back([&cache, small_batch, small_out, tier] {
      (void)cache.get_batch(small_batch, small_out, tier);
    });
    large_gets.emplace_back(
        [&cache, all_keys, out_all, tier] { (void)cache.get_batch(all_keys, out_all, tier); });
    small_puts.emplace_back([&cache, small_batch, small_values, tier] {
      cache.put_batch(small_batch, small_values, std::nullopt, tier);
    });
    large_puts.emplace_back([&cache, all_keys, put_values, tier] {
      cache.put_batch(all_keys, put_values, std::nullopt, tier);
    });
  }
  const std::vector<double> get_small = interleaved_median_us(15, small_gets);
  const std::vector<double> get_large = interleaved_median_us(9, large_gets);
  const std::vector<double> put_small = interleaved_median_us(15, small_puts);
  const std::vector<double> put_large = interleaved_median_us(5, large_puts);
  for (std::size_t i = 0; i < std::size(kIoTiers); ++i) {
    const double n = static_cast<double>(small_n(kIoTiers[i]));
    c.model(ModelOp::GetBatch, kIoTiers[i]) =
        fit(n, get_small[i], double(kBatchKeys), get_large[i]);
    c.model(ModelOp::PutBatch, kIoTiers[i]) =
        fit(n * kDim, put_small[i], double(kBatchKeys) * kDim, put_large[i]);
  }
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return c;
}

std::string machine_key(Isa isa, const std::string& gpu_description) {
  return cpu_model() + " | " + std::to_string(std::thread::hardware_concurrency()) + " threads | " +
         std::string(to_string(isa)) + " | " +
         (gpu_description.empty() ? std::string("no gpu") : gpu_description) + " | " +
         kModelVersion;
}

std::string calibration_directory(const std::string& configured) {
  if (!configured.empty()) return configured;
  if (const char* dir = std::getenv("HETCACHE_CACHE_DIR"); dir != nullptr && *dir != '\0')
    return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0')
    return std::string(xdg) + "/hetcache";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    return std::string(home) + "/.cache/hetcache";
  return (std::filesystem::temp_directory_path() / "hetcache").string();
}

std::string calibration_path(const std::string& directory, const std::string& key) {
  char name[64];
  std::snprintf(name, sizeof name, "calibration-%016llx.txt",
                static_cast<unsigned long long>(XXH3_64bits(key.data(), key.size())));
  return (std::filesystem::path(directory) / name).string();
}

std::optional<Calibration> load_calibration(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  auto c = Calibration::parse(text.str());
  if (!c || c->machine_key != key) return std::nullopt;  // another machine's numbers, or damaged
  return c;
}

bool save_calibration(const std::string& path, const Calibration& calibration) {
  std::error_code ec;
  const std::filesystem::path target(path);
  std::filesystem::create_directories(target.parent_path(), ec);
  const std::filesystem::path temp = target.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    if (!out) return false;
    out << calibration.serialize();
    if (!out.flush()) return false;
  }
  std::filesystem::rename(temp, target, ec);
  if (ec) std::filesystem::remove(temp, ec);
  return !ec;
}

}  // namespace hetcache::scheduler
