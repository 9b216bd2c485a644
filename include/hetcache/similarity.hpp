#pragma once
// Batched similarity on the CPU tiers and the GPU tier: full score matrices, top-k search,
// one-query scoring.

#include <hetcache/candidates.hpp>
#include <hetcache/compact.hpp>
#include <hetcache/matrix.hpp>
#include <hetcache/resources.hpp>
#include <hetcache/types.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hetcache {
namespace detail {
struct DeviceRows;  // a set in device memory (src/compute/gpu/gpu_tier.hpp; not API)
}

// Top-k results: for each query, up to k (score, id) pairs, best first.
// Ordering rules (identical on every tier and ISA): better score first (larger for Dot/Cosine,
// smaller for L2); equal scores by lower id; NaN scores rank after every real score. With N
// candidates every query gets exactly min(k, N) hits, so there are never placeholder ids.
// For L2 the score is the squared distance.
class Hits {
 public:
  Hits() = default;
  Hits(std::size_t num_queries, std::size_t k);

  std::size_t num_queries() const noexcept { return num_queries_; }
  std::size_t k() const noexcept { return k_; }  // hits per query
  std::span<const float> scores(std::size_t query) const;
  std::span<const std::int64_t> ids(std::size_t query) const;
  std::span<float> mutable_scores(std::size_t query);
  std::span<std::int64_t> mutable_ids(std::size_t query);

 private:
  std::size_t num_queries_ = 0;
  std::size_t k_ = 0;
  std::vector<float> scores_;
  std::vector<std::int64_t> ids_;
};

struct SimilarityOptions {
  // SIMD path for this engine; empty (the default) = default_isa(). An ISA the CPU lacks is an
  // error.
  std::optional<Isa> isa{};
  // How the GPU tier multiplies, and what upload() stores by default (default F32).
  Precision gpu_precision = Precision::F32;
  // The threads and the GPU the engine runs on (the Cpu tier's arena, the GPU context); empty (the
  // default) = Resources::shared().
  std::shared_ptr<Resources> resources{};
  // Compact sets: multiply in the set's own type where the CPU can (AVX512-BF16's vdpbf16ps for
  // Bf16, AVX-512 VNNI's or AVX-VNNI's vpdpbusd for I8), rounding the queries to that type too;
  // exact mode's bound carries the queries' rounding (default true). false widens the rows to f32
  // in registers and keeps the queries f32: fewer candidates to re-score, a quarter / half the
  // peak rate.
  bool quantize_queries = true;
  // With quantize_queries, on a CPU whose AMX-BF16 / AMX-INT8 this process may use: Bf16 / I8
  // sets searched on the AMX tiles when a thread's part has 8 or more queries (fewer: the AVX-512
  // kernels). Empty (the default) = the HETCACHE_AMX environment variable, 0 when unset: these
  // kernels have been tested over a software model of the tile instructions, not yet on AMX
  // hardware. true on a CPU without AMX: the AVX-512 kernels. HETCACHE_AMX other than 0 or 1
  // makes a constructor that reads it throw InvalidArgument.
  std::optional<bool> amx_kernels{};
};

// What the GPU tier did. Counts are since the Resources opened the GPU (shared by every engine on
// them).
struct GpuStats {
  bool available = false;
  std::string device;          // e.g. "NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)"; empty when absent
  std::string reason;          // why the tier is absent; empty when available
  std::uint64_t searches = 0;  // searches the GPU answered
  std::uint64_t oom_fallbacks = 0;  // searches that ran out of device memory and ran on the CPU
  std::uint64_t tiles = 0;          // GEMM / scan tiles computed
  std::uint64_t bytes_to_device = 0;
};

// A candidate set resident in GPU memory: uploaded once by SimilarityEngine::upload, searched many
// times without crossing PCIe again. Freed when the last copy of the handle goes.
class DeviceMatrix {
 public:
  DeviceMatrix() = default;
  std::size_t rows() const noexcept;
  std::size_t dim() const noexcept;
  Precision precision() const noexcept;
  std::size_t device_bytes() const noexcept;
  bool empty() const noexcept { return rows_ == nullptr; }

 private:
  friend class SimilarityEngine;
  std::shared_ptr<detail::DeviceRows> rows_;
};

// Computes similarities between query vectors and candidate vectors, on the tier it is given.
// Every call validates its inputs and throws hetcache::Error naming the bad value: dimension
// mismatch (DimensionMismatch), sizes whose product overflows (InvalidArgument), and a tier this
// engine cannot run (Unsupported). Calls are thread-safe; results do not depend on the tier or on
// the number of threads.
class SimilarityEngine {
 public:
  explicit SimilarityEngine(SimilarityOptions options = {});
  ~SimilarityEngine();
  SimilarityEngine(const SimilarityEngine&) = delete;
  SimilarityEngine& operator=(const SimilarityEngine&) = delete;

  Isa isa() const noexcept;
  bool quantize_queries() const noexcept;  // SimilarityOptions::quantize_queries
  bool amx_kernels() const noexcept;       // SimilarityOptions::amx_kernels, resolved
  // The kernels this engine searches compact sets of `type` with on the CPU, e.g. "avx512-bf16",
  // "amx-bf16", "avx2" (F32: the ISA's name).
  std::string_view compact_kernels(StorageType type) const;
  std::size_t cpu_threads() const noexcept;  // the Resources' arena
  const std::shared_ptr<Resources>& resources() const noexcept;

  // Every call takes the tier it runs on. A call that names none is placed by the scheduler's
  // fixed rule (Strategy::Hybrid with the default SchedulerConfig: Sequential under 4M
  // multiply-adds, the GPU from 2^32 when there is one, Cpu between); a Scheduler places by its
  // own strategy (Scheduler::search).

  // Full Q x N matrix of scores (squared distances for L2); row q holds query q's scores.
  Matrix scores(MatrixView queries, MatrixView candidates, Metric metric = Metric::Dot,
                std::optional<Tier> tier = std::nullopt) const;
  Matrix scores(MatrixView queries, CandidateView candidates, Metric metric = Metric::Dot,
                std::optional<Tier> tier = std::nullopt) const;

  // The k best candidates per query, computed without materialising the Q x N matrix.
  // k = 0 or N = 0 gives Hits with zero hits per query.
  Hits search(MatrixView queries, MatrixView candidates, std::size_t k,
              Metric metric = Metric::Cosine, std::optional<Tier> tier = std::nullopt) const;
  // The same over candidates whose norms are kept (a CandidateSet converts): Cosine and L2 read
  // them instead of computing them. Same results as the form above.
  Hits search(MatrixView queries, CandidateView candidates, std::size_t k,
              Metric metric = Metric::Cosine, std::optional<Tier> tier = std::nullopt) const;

  // A candidate set searched many times: takes the rows (no copy) and computes each row's squared
  // norm once (as squared_norms does). Copy a view in with Matrix::copy_of.
  CandidateSet candidate_set(Matrix rows) const;
  // |rows.row(i)|^2 for every row, summed as this engine's ISA sums a dot product (what a
  // CandidateView's norms must be for bit-identical scores); placed like a one-query search over
  // the rows (Sequential when small, else Cpu).
  std::vector<float> squared_norms(MatrixView rows) const;

  // --- compact sets (f16 / bf16 / int8) ---------------------------------------------------------
  // Encodes `rows` as `type` (see StorageType) with the engine's ISA and derives each row's error
  // bound; keep_f32 (the default) keeps an f32 copy of the rows for exact-mode re-scoring. Placed
  // like squared_norms. Bf16 sets are searched with AVX512-BF16 (vdpbf16ps) where the CPU has it
  // and the engine's ISA is avx512; every other type and CPU widens the rows to f32 in registers.
  CompactSet compact_set(MatrixView rows, StorageType type, bool keep_f32 = true) const;
  // Top-k over a compact set on the CPU tiers (sequential or cpu; a call that names no tier is
  // placed like the f32 search, and the GPU tier answers Error(Unsupported)). Exact mode needs
  // the f32 rows: the set's own (keep_f32), else Error(InvalidArgument) says to pass them.
  Hits search(MatrixView queries, const CompactSet& candidates, std::size_t k,
              Metric metric = Metric::Cosine, ScoreMode mode = ScoreMode::Exact,
              std::optional<Tier> tier = std::nullopt) const;
  // Exact mode re-scoring from f32 rows kept elsewhere (the rows the set was made from, e.g. a
  // memory-mapped file or a durable store's read): same result as a set that kept them.
  Hits search(MatrixView queries, const CompactSet& candidates, CandidateView f32_rows,
              std::size_t k, Metric metric = Metric::Cosine,
              std::optional<Tier> tier = std::nullopt) const;

  // --- the GPU tier -----------------------------------------------------------------------------
  // search(..., Tier::Gpu) on host candidates streams them through pinned buffers, tile by tile.
  // Asking for Tier::Gpu where the tier is absent throws Error(Unsupported) with the reason.
  bool gpu_available() const noexcept;
  GpuStats gpu_stats() const;
  // Copies candidates to the device (as `precision`, default GpuOptions::precision). Throws
  // Error(Unsupported) without a GPU, Error(GpuError) when the device has no room.
  DeviceMatrix upload(MatrixView candidates,
                      std::optional<Precision> precision = std::nullopt) const;
  // Top-k over a device-resident set; same result rules as the host forms.
  Hits search(MatrixView queries, const DeviceMatrix& candidates, std::size_t k,
              Metric metric = Metric::Cosine) const;

  // One score per candidate for a single query.
  std::vector<float> batch_similarity_search(std::span<const float> query, MatrixView candidates,
                                             Metric metric = Metric::Cosine,
                                             std::optional<Tier> tier = std::nullopt) const;

 private:
  Hits search_compact(MatrixView queries, const CompactSet& candidates, CandidateView f32_rows,
                      std::size_t k, Metric metric, ScoreMode mode,
                      std::optional<Tier> tier) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hetcache
