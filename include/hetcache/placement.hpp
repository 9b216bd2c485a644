#pragma once
// Placement: the vocabulary every placed operation is described in (Strategy, OpKind, Work), the
// knobs of the rules that place it (SchedulerConfig), and what was counted (PerformanceMetrics).
// The Scheduler (scheduler.hpp) is the one place that turns a Work into a Tier; an EmbeddingCache
// places its own operations through a Scheduler built from CacheOptions::scheduler.
#include <hetcache/resources.hpp>
#include <hetcache/types.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace hetcache {

enum class Strategy { FiberOnly, CpuOnly, GpuOnly, Hybrid, Adaptive };
std::string_view to_string(Strategy strategy) noexcept;
// "fiber-only" / "cpu-only" / "gpu-only" / "hybrid" / "adaptive" (case-insensitive, '_' or '-');
// throws Error(InvalidArgument) otherwise.
Strategy parse_strategy(std::string_view text);

enum class OpKind { Get, GetBatch, Put, PutBatch, Similarity };
std::string_view to_string(OpKind op) noexcept;
// True for Get and GetBatch (the I/O-intensive operations).
bool is_io(OpKind op) noexcept;

// One operation to place.
struct Work {
  OpKind op = OpKind::GetBatch;
  std::size_t items = 1;  // keys for Get/Put ops; candidates for Similarity
  // Similarity: queries x candidates (items) x dim multiply-adds. Put ops: bytes are items x dim
  // x 4.
  std::size_t queries = 1;
  std::size_t dim = 0;
  bool data_on_gpu = false;  // Similarity over a device-resident set: nothing crosses the link
  bool durable = false;      // Get ops that may read a durable store (RocksDB, Redis)
  // Get ops: the durable store's round trip in us (Redis across a network), which a tier that
  // blocks a thread per chunk waits for once per round of chunks, and one that overlaps the
  // chunks (fibers, a pipelined sequential read) once; 0 = a local store.
  double round_trip_us = 0.0;
  bool host_only = false;    // Similarity whose data cannot reach the GPU (no device copy)
};

// Hybrid runs work of fewer items than this on the calling thread; the
// thresholds below cannot be set under it.
inline constexpr std::size_t kSequentialBelow = 10;

struct SchedulerConfig {
  Strategy strategy = Strategy::Hybrid;
  // false: compute runs the scalar kernels (and is not counted as SIMD).
  bool enable_simd = true;
  // Hybrid: Put ops with at least this many keys go to the TBB arena (default 2^20). Measured on
  // a 2-vCPU Xeon, parallel puts into the memory store were no faster than one thread at any
  // batch size, a parallel writer took the cores from concurrent readers, and a store filled by
  // two threads read 10-40% slower afterwards (bench/results/unification-2026-12-02.md); lower
  // it on machines with many cores and memory bandwidth to spare.
  std::size_t cpu_intensive_threshold = std::size_t{1} << 20;
  // Hybrid: I/O ops with at least this many keys go to fibers (default 20).
  std::size_t io_intensive_threshold = 20;
  // Keys per chunk when I/O runs on fibers or the TBB arena (default 64).
  std::size_t optimal_batch_size = 64;
  // Hybrid: a Similarity of at least this many multiply-adds (queries x candidates x dim) goes to
  // the TBB arena; below it, the calling thread (default 2^22: ~70 us on one AVX-512 core, the
  // order of waking the arena's workers). The one CPU threshold of similarity, as FAISS's
  // distance_compute_blas_threshold is of its BLAS path.
  std::uint64_t cpu_min_multiply_adds = std::uint64_t{1} << 22;
  // Hybrid: a Similarity of at least this many multiply-adds goes to the GPU when there is one
  // and the data can reach it (default 2^32).
  std::uint64_t gpu_min_multiply_adds = std::uint64_t{1} << 32;
  // How the GPU tier multiplies (SimilarityOptions::gpu_precision; default F32).
  Precision gpu_precision = Precision::F32;
  // Adaptive's calibration: a file per machine under this directory; empty = $HETCACHE_CACHE_DIR,
  // else $XDG_CACHE_HOME/hetcache, else ~/.cache/hetcache. calibrate = false skips the
  // micro-benchmark and starts from built-in estimates (online correction still applies).
  std::string calibration_dir;
  bool calibrate = true;
  // The threads and the GPU operations run on; empty (the default) = Resources::shared().
  std::shared_ptr<Resources> resources{};
};

// Throws Error(InvalidArgument) naming the bad knob: a zero batch size or threshold, a threshold
// over 10^9, io/cpu thresholds below the sequential cut (10), a cpu_min_multiply_adds or
// gpu_min_multiply_adds of 0.
void validate(const SchedulerConfig& config);

// Latencies of one tier (log-spaced histogram, 8 buckets per doubling: quantiles within 9%).
struct TierMetrics {
  std::uint64_t operations = 0;
  std::uint64_t items = 0;
  double busy_seconds = 0.0;
  std::uint64_t decisions = 0;  // times a strategy chose this tier
  double p50_us = 0.0, p95_us = 0.0, p99_us = 0.0;
};

// What ran: totals, SIMD and parallel counts, and per-tier detail. Counted truthfully: an op is
// parallel or SIMD only when it really ran so.
struct PerformanceMetrics {
  std::uint64_t total_operations = 0;
  std::uint64_t parallel_operations = 0;
  std::uint64_t simd_operations = 0;
  double total_time_seconds = 0.0;  // sum of operation latencies
  std::uint64_t prefetch_hits = 0;
  std::uint64_t prefetch_misses = 0;
  std::array<TierMetrics, kAllTiers.size()> tiers{};  // indexed by Tier
  std::uint64_t calibrations = 0;  // micro-benchmarks run (0 when reused from disk)

  double operations_per_second() const noexcept;  // total_operations / total_time
  double parallel_utilization() const noexcept;   // percent of operations
  double simd_utilization() const noexcept;       // percent of operations
  std::string to_json() const;
  // Prometheus text exposition format (version 0.0.4), metric names prefixed hetcache_.
  std::string to_prometheus() const;
};

}  // namespace hetcache
