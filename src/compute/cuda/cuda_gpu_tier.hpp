// Private: the CUDA GPU tier's class, shared by its two halves -- the searches
// (cuda_gpu_tier.cu) and the device-resident sets (cuda_device_rows.cu) -- and the conversions
// both use. Only src/compute/cuda includes it.
#pragma once

#include <hetcache/error.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "compute/cuda/gpu_context.hpp"
#include "compute/cuda/gpu_kernels.cuh"
#include "compute/cuda/search_exit.hpp"
#include "compute/cuda/tile_plan.hpp"
#include "compute/gpu/gpu_tier.hpp"

namespace hetcache::gpu {

constexpr std::size_t kMaxCandidates = 0xFFFFFFFEu;  // ids are the low 32 bits of a ranking key

inline bool is_half(Precision p) { return p == Precision::Bf16 || p == Precision::F16; }
inline std::size_t element_bytes(Precision p) { return is_half(p) ? 2 : 4; }

inline void convert(const float* in, std::size_t n, void* out, Precision p, cudaStream_t stream) {
  if (p == Precision::Bf16) launch_to_bf16(in, n, out, stream);
  if (p == Precision::F16) launch_to_f16(in, n, out, stream);
}

// Where the candidates are: host rows (streamed) or a device-resident set.
struct Candidates {
  const float* host = nullptr;
  std::size_t host_stride = 0;
  const void* device = nullptr;
  const float* device_norms = nullptr;
  std::size_t rows = 0;
  std::size_t dim = 0;
  Precision precision = Precision::F32;
};

class CudaGpuTier final : public GpuTier {
 public:
  explicit CudaGpuTier(std::shared_ptr<GpuContext> context) : ctx_(std::move(context)) {}

  bool available() const noexcept override { return !lost_.load(); }

  GpuStats stats() const override {
    GpuStats s;
    s.available = !lost_.load();
    s.device = ctx_->description();
    if (!s.available) {
      std::lock_guard lock(lost_mutex_);
      s.reason = lost_reason_;
    }
    s.searches = searches_.load();
    s.oom_fallbacks = oom_fallbacks_.load();
    s.tiles = tiles_.load();
    s.bytes_to_device = bytes_to_device_.load();
    return s;
  }

  std::optional<Hits> search(MatrixView queries, MatrixView candidates, std::size_t k,
                             Metric metric, Precision precision) override {
    Candidates c;
    c.host = candidates.data();
    c.host_stride = candidates.stride();
    c.rows = candidates.rows();
    c.dim = candidates.dim();
    c.precision = precision;
    return guarded(queries, c, k, metric);
  }

  std::optional<Hits> search(MatrixView queries, const detail::DeviceRows& set, std::size_t k,
                             Metric metric) override {
    Candidates c;
    c.device = set.data.get();
    c.device_norms = static_cast<const float*>(set.norms.get());
    c.rows = set.rows;
    c.dim = set.dim;
    c.precision = set.precision;
    return guarded(queries, c, k, metric);
  }

  std::shared_ptr<detail::DeviceRows> upload(MatrixView candidates, Precision p) override;
  std::shared_ptr<detail::DeviceRows> allocate(std::size_t rows, std::size_t dim,
                                               Precision p) override;
  void write_rows(detail::DeviceRows& set, std::size_t first, MatrixView rows) override;
  Matrix download(const detail::DeviceRows& set) override;

 private:
  void copy_rows(detail::DeviceRows& set, std::size_t first, MatrixView rows);
  std::optional<Hits> guarded(MatrixView queries, const Candidates& c, std::size_t k,
                              Metric metric) {
    if (c.dim == 0) throw Error(ErrorCode::InvalidArgument, "tier gpu needs vectors of dim >= 1");
    if (c.rows > kMaxCandidates) {
      throw Error(ErrorCode::Unsupported,
                  "tier gpu searches at most 4294967294 candidates, got " + std::to_string(c.rows));
    }
    std::lock_guard lock(ctx_->mutex());
    if (lost_.load()) return std::nullopt;
    SearchExit exit;
    std::optional<Hits> hits = settled_search<Hits>(
        [&] { return run(queries, c, k, metric); }, [this]() noexcept { settle(); },
        [this]() noexcept { return device_lost(); }, exit);
    if (hits) searches_.fetch_add(1);
    if (exit.out_of_memory) oom_fallbacks_.fetch_add(1);
    if (exit.device_lost) lose(*exit.device_lost);
    return hits;
  }

  // Both streams idle, and the non-sticky error they may have left cleared.
  void settle() noexcept {
    for (int i = 0; i < GpuContext::kStreams; ++i) (void)cudaStreamSynchronize(ctx_->stream(i));
    (void)cudaGetLastError();
  }

  // The sticky error, when the context is unusable (every later call would fail with it).
  std::optional<std::string> device_lost() noexcept {
    const cudaError_t e = cudaDeviceSynchronize();
    if (e == cudaSuccess) return std::nullopt;
    try {
      return std::string("the device failed (") + cudaGetErrorName(e) + ": " +
             cudaGetErrorString(e) + "); the GPU tier is off until the process restarts";
    } catch (...) {
      return std::string();
    }
  }

  void lose(const std::string& reason) {
    std::lock_guard lock(lost_mutex_);
    lost_reason_ = reason;
    lost_.store(true);
  }

  // One search, with the context's mutex held: planned (query blocks and tiles), then block by
  // block the queries uploaded, the tiles streamed, their keys merged and decoded.
  Hits run(MatrixView queries, const Candidates& c, std::size_t k, Metric metric);
  Hits run_block(MatrixView queries, const Candidates& c, std::size_t kept, Metric metric,
                 const TilePlan& plan);
  struct QueriesOnDevice {
    float* f32 = nullptr;
    void* half = nullptr;    // only for a half-precision GEMM
    float* norms = nullptr;  // only for Cosine and L2
  };
  QueriesOnDevice upload_queries(MatrixView queries, Precision p, bool scan, bool norms);
  void stream_tiles(const Candidates& c, const QueriesOnDevice& q, std::size_t q_count,
                    Metric metric, bool scan, const TilePlan& plan, std::uint64_t* partial);
  struct MergeBuffers {
    std::uint64_t* partial = nullptr;   // every tile's kept keys: q_count x plan.partial_ld
    std::uint64_t* selected = nullptr;  // the merged best keys: q_count x kept
    std::uint64_t* sorted = nullptr;    // the rest only when kept > kQueueSelectMaxK
    int* offsets = nullptr;
    void* temp = nullptr;
    std::size_t temp_bytes = 0;
  };
  std::vector<std::uint64_t> merge_keys(const MergeBuffers& m, const TilePlan& plan,
                                        std::size_t q_count, std::size_t kept);
  // Device memory freed (on this tier's device) when the last owner lets go.
  std::shared_ptr<void> device_memory(std::size_t bytes, const char* what);

  std::shared_ptr<GpuContext> ctx_;
  std::atomic<std::uint64_t> searches_{0}, oom_fallbacks_{0}, tiles_{0}, bytes_to_device_{0};
  std::atomic<bool> lost_{false};
  mutable std::mutex lost_mutex_;
  std::string lost_reason_;  // guarded by lost_mutex_
};

}  // namespace hetcache::gpu
