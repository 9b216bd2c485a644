#pragma once
// hetcache::Scheduler: picks the tier an operation runs on, explains why, and counts what ran.
//
// Operations fall in two classes:
//   Get (one key), GetBatch            : I/O     -- waiting on stores; fibers overlap the waits.
//   Put (one key), PutBatch, Similarity: compute -- validation, serialisation, SIMD scoring.
// I/O runs on Sequential (the caller), Fiber (chunks of optimal_batch_size as concurrent fibers)
// or Cpu (chunks across the TBB arena). Compute runs on Sequential or Cpu, and a Similarity search
// also on the GPU. Fibers never run compute: where a strategy would put compute on fibers, it runs
// on the calling thread, and the decision says so.
//
// Strategies:
//   FiberOnly : I/O on fibers, compute sequential.
//   CpuOnly   : everything on the TBB arena.
//   GpuOnly   : Similarity on the GPU, everything else on the TBB arena; without a GPU, CpuOnly
//               (the decision's reason says the GPU is absent).
//   Hybrid    : a fixed rule -- n < 10 sequential; I/O with n >= io_intensive_threshold on
//               fibers; puts with n >= cpu_intensive_threshold on the TBB arena; a Similarity of
//               at least gpu_min_multiply_adds on the GPU when there is one and its data can reach
//               it, else of at least cpu_min_multiply_adds on the TBB arena; otherwise I/O on
//               fibers and compute sequential.
//   Adaptive  : the cheapest tier by a cost model -- fixed overhead + work / calibrated throughput
//               (+ bytes to move / link bandwidth when the data is not on the GPU) + the store's
//               round trips the tier waits for in a row + the tier's current queue wait --
//               calibrated once per machine (cached on disk) and corrected
//               online from observed latencies, per tier and size bucket. Gets and puts of fewer
//               than 10 items run sequentially, as under Hybrid, and so do those of one chunk
//               (at most optimal_batch_size keys) of a local store: every tier runs them on the
//               calling thread.
#include <hetcache/cache.hpp>
#include <hetcache/placement.hpp>
#include <hetcache/similarity.hpp>
#include <hetcache/types.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hetcache {

// What a tier is predicted to cost for one Work.
struct TierCost {
  Tier tier = Tier::Sequential;
  bool available = false;     // false: the tier cannot run this op here (reason in note)
  double predicted_us = 0.0;  // (overhead + work + transfer) x correction + wait + queue + wake-up
  double overhead_us = 0.0;
  double work_us = 0.0;
  double transfer_us = 0.0;
  // Waiting on the store's link: Work::round_trip_us x the round trips this tier makes one after
  // another (1 for fibers and sequential, ceil(chunks / arena threads) for the arena). Not scaled
  // by the correction, which learns the rest.
  double wait_us = 0.0;
  double queue_us = 0.0;
  // The tier's threads have been idle and must wake (learned from observations after idle
  // periods): this operation's share, the wake-up over the operations of its burst (work of its
  // kind and size without an idle spell between) expected from this one on -- a burst wakes a
  // tier once, and a tier the burst runs on stays awake.
  double wake_us = 0.0;
  double correction = 1.0;  // the online factor applied (observed / modelled, this bucket)
  std::string note;
};

struct Decision {
  Tier tier = Tier::Sequential;
  Strategy strategy = Strategy::Hybrid;
  std::string reason;           // one line: the rule or the cost comparison that chose the tier
  std::vector<TierCost> costs;  // every tier, predicted (filled for every strategy)
  std::string explain() const;  // multi-line: the reason and a table of the costs
};

// How an operation actually ran, for the metrics: a sequential loop over chunks is not parallel,
// a scalar kernel is not SIMD.
struct Execution {
  bool parallel = false;
  bool simd = false;
};

class Scheduler {
 public:
  // Validates the config; an Adaptive scheduler calibrates on first decide() (or loads the
  // calibration cached for this machine).
  explicit Scheduler(SchedulerConfig config = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  const SchedulerConfig& config() const noexcept;
  bool gpu_available() const noexcept;

  // Where `work` should run, with the reason and every tier's predicted cost. Thread-safe; counts
  // the decision. (The scheduled operations below decide without formatting any of this unless
  // their `decision` argument asks for it.) Throws Error(InvalidArgument) for work with no items or
  // (Similarity) no dim.
  Decision decide(const Work& work);
  // Where `work` runs, decided as decide() decides, without formatting a reason or the costs (what
  // a placed operation calls every time). Counts the decision.
  Tier place(const Work& work);

  // Marks work as started / finished on a tier: the queue wait the cost model adds, the metrics,
  // and (for every strategy) the online correction of the tier's model for that size bucket.
  // `started` returns a ticket for `finished` on the same tier (another tier's ticket:
  // Error(InvalidArgument)).
  std::uint64_t started(Tier tier);
  void finished(std::uint64_t ticket, const Work& work, Tier tier, std::chrono::nanoseconds latency,
                Execution execution);

  // --- scheduled operations: decide, run on the chosen tier, record --------------------------
  // Top-k search on this scheduler's engine (SimilarityOptions from the config: enable_simd,
  // cpu_threads, gpu). `decision`, when given, receives the decision taken.
  Hits search(MatrixView queries, MatrixView candidates, std::size_t k,
              Metric metric = Metric::Cosine, Decision* decision = nullptr);
  // The same over candidates whose norms are kept (a CandidateSet converts).
  Hits search(MatrixView queries, CandidateView candidates, std::size_t k,
              Metric metric = Metric::Cosine, Decision* decision = nullptr);
  // A cache batch on the chosen tier: Sequential = cache.get_batch, Fiber = get_batch_async,
  // Cpu = chunks of optimal_batch_size across the TBB arena. Same results as the cache's own call.
  std::vector<std::uint8_t> get_batch(EmbeddingCache& cache, std::span<const std::string> keys,
                                      MutableMatrixView out, Decision* decision = nullptr);
  // A put batch on the chosen tier (Cpu: checked whole, then written in chunks in parallel).
  void put_batch(EmbeddingCache& cache, std::span<const std::string> keys, MatrixView values,
                 Ttl ttl = std::nullopt, Decision* decision = nullptr);
  // Top-k of each query over every live vector of the cache's durable store (RocksDB), read in
  // batches of at most 65,536 rows and 64 MiB, each batch searched on the tier this scheduler
  // picks, the batches merged in ranks_before order (NaN after every number, ties by key), so the
  // result is that of one search over the whole database. Per query min(k, vectors) hits.
  // `progress`, when set, receives the rows searched so far after each batch. Throws what
  // EmbeddingCache::scan throws (Unsupported without RocksDB, Corruption for damaged files) and
  // DimensionMismatch for queries of another dimension.
  struct DatabaseHits {
    std::vector<std::vector<KeyHit>> hits;  // per query, best first
    ScanCounts counts;                      // vectors searched, expired and corrupt skipped
    std::array<std::uint64_t, kAllTiers.size()> batches{};  // batches run on each Tier, by index
  };
  DatabaseHits search_database(EmbeddingCache& cache, MatrixView queries, std::size_t k,
                               Metric metric = Metric::Cosine,
                               const std::function<void(std::uint64_t rows)>& progress = {});
  const SimilarityEngine& engine() const noexcept;

  // Prefetch counters folded into these metrics (from a cache's stats()).
  void add_prefetch(std::uint64_t hits, std::uint64_t misses);

  PerformanceMetrics metrics() const;
  void reset_metrics();

  // The machine key calibration is cached under (CPU model, cores, GPU name), and the file.
  std::string machine_key() const;
  std::string calibration_file() const;
  // Runs the micro-benchmark now and rewrites the cache file.
  void recalibrate();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hetcache
