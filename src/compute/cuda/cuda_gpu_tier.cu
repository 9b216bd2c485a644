// src/compute/cuda: the GPU tier on CUDA and cuBLAS -- the device context and its memory budget
// (gpu_context.cu), the kernels (gpu_kernels.cu) and this tier. Only this folder includes CUDA
// headers, and it builds as the plugin libhetcache_cuda.so (cuda_plugin.cpp), which the Resources
// load through make_gpu_tier (compute/gpu/gpu_plugin_loader.cpp), never callers directly.
//
// The GPU tier on CUDA: top-k search of host-resident candidates (streamed through pinned buffers
// on two streams, so one tile's copy overlaps the other's compute) and of device-resident ones.
//
// Per tile of T candidates: scores for every query -- one cuBLAS GEMM for large Q, or for small Q a
// scan kernel that reads each candidate row once -- then a select keeps each query's best min(k, T)
// as ranking keys (gpu_kernels.cuh: a queue select that reads the scores once for k <= 256, a
// radix select above). After the last tile a second select merges the tiles' keys per query; for
// k > 256 a segmented sort orders the final k. The Q x N score matrix never
// exists: only two Q x T tiles (one per stream) do.
#include <hetcache/error.hpp>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <vector>

#include "compute/cuda/cuda_check.hpp"
#include "compute/cuda/gpu_context.hpp"
#include "compute/cuda/gpu_kernels.cuh"
#include "compute/cuda/queue_select.hpp"
#include "compute/cuda/search_exit.hpp"
#include "compute/cuda/tile_plan.hpp"
#include "compute/gpu/gpu_tier.hpp"

namespace hetcache::gpu {
namespace {

constexpr std::size_t kMaxCandidates = 0xFFFFFFFEu;  // ids are the low 32 bits of a ranking key

bool is_half(Precision p) { return p == Precision::Bf16 || p == Precision::F16; }
std::size_t element_bytes(Precision p) { return is_half(p) ? 2 : 4; }

void convert(const float* in, std::size_t n, void* out, Precision p, cudaStream_t stream) {
  if (p == Precision::Bf16) launch_to_bf16(in, n, out, stream);
  if (p == Precision::F16) launch_to_f16(in, n, out, stream);
}

// dots (ldc x q_count, column-major = row-major q_count x ldc) = candidates^T . queries.
void gemm(cublasHandle_t blas, Precision p, std::size_t rows, int q_count, std::size_t dim,
          const void* candidates, const void* queries, float* dots, std::size_t ldc) {
  const cudaDataType_t input = p == Precision::Bf16  ? CUDA_R_16BF
                               : p == Precision::F16 ? CUDA_R_16F
                                                     : CUDA_R_32F;
  const cublasComputeType_t compute =
      p == Precision::Tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  const float alpha = 1.0f, beta = 0.0f;
  check(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), q_count,
                     static_cast<int>(dim), &alpha, candidates, input, static_cast<int>(dim),
                     queries, input, static_cast<int>(dim), &beta, dots, CUDA_R_32F,
                     static_cast<int>(ldc), compute, CUBLAS_GEMM_DEFAULT),
        "cublasGemmEx");
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

// The queries on the device: f32 (scan, f32/tf32 GEMM), converted for a half-precision GEMM, and
// their squared norms for Cosine and L2.
CudaGpuTier::QueriesOnDevice CudaGpuTier::upload_queries(MatrixView queries, Precision p,
                                                         bool scan, bool norms) {
  const std::size_t q_count = queries.rows(), dim = queries.dim();
  cudaStream_t s0 = ctx_->stream(0);
  QueriesOnDevice q;
  q.f32 = ctx_->take<float>(q_count * dim);
  check(
      cudaMemcpy2DAsync(q.f32, dim * sizeof(float), queries.data(), queries.stride() * sizeof(float),
                        dim * sizeof(float), q_count, cudaMemcpyHostToDevice, s0),
      "cudaMemcpy2DAsync(queries)");
  bytes_to_device_.fetch_add(q_count * dim * sizeof(float));
  if (is_half(p) && !scan) {
    q.half = ctx_->take(q_count * dim * 2);
    convert(q.f32, q_count * dim, q.half, p, s0);
  }
  if (norms) {
    q.norms = ctx_->take<float>(q_count);
    launch_row_sq_norms(q.half != nullptr ? q.half : q.f32,
                        q.half != nullptr ? p : Precision::F32, q_count, dim, q.norms, s0);
  }
  return q;
}

// Streams every tile through the two streams: (host candidates) staged, copied, converted and
// normed; scored by the scan kernel or a GEMM; selected into the tile's partial keys. Returns when
// both streams are done.
void CudaGpuTier::stream_tiles(const Candidates& c, const QueriesOnDevice& q, std::size_t q_count,
                               Metric metric, bool scan, const TilePlan& plan,
                               std::uint64_t* partial) {
  const std::size_t dim = c.dim, n = c.rows, tile = plan.tile;
  const Precision p = c.precision;
  const bool half = is_half(p), host = c.host != nullptr, norms = metric != Metric::Dot;
  struct Slot {
    float* dots = nullptr;
    float* f32 = nullptr;
    void* converted = nullptr;
    float* norms = nullptr;
  } slots[GpuContext::kStreams];
  for (auto& slot : slots) {
    slot.dots = ctx_->take<float>(q_count * tile);
    if (host) {
      slot.f32 = ctx_->take<float>(tile * dim);
      if (half) slot.converted = ctx_->take(tile * dim * 2);
      slot.norms = ctx_->take<float>(tile);
    }
  }
  // Both streams start after the queries are on the device.
  cudaEvent_t queries_ready;
  check(cudaEventCreateWithFlags(&queries_ready, cudaEventDisableTiming), "cudaEventCreate");
  check(cudaEventRecord(queries_ready, ctx_->stream(0)), "cudaEventRecord");
  const cudaError_t waited = cudaStreamWaitEvent(ctx_->stream(1), queries_ready, 0);
  check(cudaEventDestroy(queries_ready), "cudaEventDestroy");
  check(waited, "cudaStreamWaitEvent");

  for (std::size_t t = 0; t < plan.tiles; ++t) {
    const int s = static_cast<int>(t % GpuContext::kStreams);
    cudaStream_t stream = ctx_->stream(s);
    Slot& slot = slots[s];
    const std::size_t first = t * tile, rows = std::min(tile, n - first);
    const void* cand;
    const float* cnorms = nullptr;
    if (host) {
      // The slot's previous tile must be done with its pinned buffer and device buffers.
      check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
      float* staging = ctx_->pinned(s);
      if (c.host_stride == dim) {
        std::memcpy(staging, c.host + first * dim, rows * dim * sizeof(float));
      } else {
        for (std::size_t r = 0; r < rows; ++r)
          std::memcpy(staging + r * dim, c.host + (first + r) * c.host_stride, dim * sizeof(float));
      }
      check(cudaMemcpyAsync(slot.f32, staging, rows * dim * sizeof(float), cudaMemcpyHostToDevice,
                            stream),
            "cudaMemcpyAsync(candidates)");
      bytes_to_device_.fetch_add(rows * dim * sizeof(float));
      cand = slot.f32;
      if (half) {
        convert(slot.f32, rows * dim, slot.converted, p, stream);
        cand = slot.converted;
      }
      if (norms) {
        launch_row_sq_norms(cand, p, rows, dim, slot.norms, stream);
        cnorms = slot.norms;
      }
    } else {
      cand = static_cast<const char*>(c.device) + first * dim * element_bytes(p);
      if (norms) cnorms = c.device_norms + first;
    }
    if (scan) {
      launch_scan_dots(q.f32, static_cast<int>(q_count), dim, cand, p, rows, slot.dots, tile,
                       stream);
    } else {
      gemm(ctx_->blas(s), p, rows, static_cast<int>(q_count), dim, cand,
           q.half != nullptr ? q.half : q.f32, slot.dots, tile);
    }
    launch_select_tile(slot.dots, tile, static_cast<int>(q_count), rows,
                       static_cast<std::uint32_t>(first), q.norms, cnorms, metric,
                       plan.chunk_rows, static_cast<unsigned>(plan.chunks), plan.keep,
                       partial + t * plan.tile_ld, plan.partial_ld, stream);
    tiles_.fetch_add(1);
  }
  for (int i = 0; i < GpuContext::kStreams; ++i)
    check(cudaStreamSynchronize(ctx_->stream(i)), "cudaStreamSynchronize");
}

// Each query's best `kept` keys, in order, from every tile's partial keys: merged by a second select
// when there was more than one tile or chunk, sorted when the radix select (kept > the queue
// select's k) left them unordered. The buffers were carved before the tiles (merge), so the tile
// size left room for them.
std::vector<std::uint64_t> CudaGpuTier::merge_keys(const MergeBuffers& m, const TilePlan& plan,
                                                   std::size_t q_count, std::size_t kept) {
  cudaStream_t s0 = ctx_->stream(0);
  const int queries = static_cast<int>(q_count);
  const std::uint64_t* best = m.partial;
  if (plan.tiles * plan.chunks > 1) {
    launch_select_keys(m.partial, plan.partial_ld, queries, plan.partial_ld, kept, m.selected, s0);
    best = m.selected;
  }
  if (m.sorted != nullptr) {
    sort_rows(best, m.sorted, queries, kept, m.offsets, m.temp, m.temp_bytes, s0);
    best = m.sorted;
  }
  std::vector<std::uint64_t> keys(q_count * kept);
  check(cudaMemcpyAsync(keys.data(), best, keys.size() * sizeof(std::uint64_t),
                        cudaMemcpyDeviceToHost, s0),
        "cudaMemcpyAsync(results)");
  check(cudaStreamSynchronize(s0), "cudaStreamSynchronize");
  return keys;
}

// Ranking keys (q_count rows of kept, each row in result order) to ids and scores.
Hits decode_hits(const std::vector<std::uint64_t>& keys, std::size_t q_count, std::size_t kept,
                 Metric metric) {
  Hits hits(q_count, kept);
  for (std::size_t q = 0; q < q_count; ++q) {
    auto scores = hits.mutable_scores(q);
    auto ids = hits.mutable_ids(q);
    for (std::size_t j = 0; j < kept; ++j) {
      const std::uint64_t key = keys[q * kept + j];
      if (key == kNoKey) throw Error(ErrorCode::Internal, "GPU top-k returned a padding key");
      ids[j] = static_cast<std::int64_t>(key & 0xFFFFFFFFu);
      scores[j] = score_of_key(key, metric);
    }
  }
  return hits;
}

bool uses_scan(std::size_t q_count, std::size_t dim) {
  return q_count <= kScanMaxQueries && q_count * dim * sizeof(float) <= kScanMaxSharedBytes;
}

// What a block of q queries takes from the scratch before its tiles: the queries on the device
// (f32, their half copy for a half-precision GEMM, their norms) and the merge's buffers, in the
// order run_block takes them; the plan's slack covers the pieces' alignment.
std::size_t block_fixed_bytes(std::size_t q, std::size_t dim, std::size_t kept, Precision p,
                              Metric metric) {
  std::size_t bytes = q * dim * sizeof(float) + q * kept * sizeof(std::uint64_t);
  if (is_half(p) && !uses_scan(q, dim)) bytes += q * dim * 2;
  if (metric != Metric::Dot) bytes += q * sizeof(float);
  if (kept > kQueueSelectMaxK) {
    bytes += q * kept * sizeof(std::uint64_t) + (q + 1) * sizeof(int) +
             sort_temp_bytes(static_cast<int>(q), kept);
  }
  return bytes;
}

Hits CudaGpuTier::run(MatrixView queries, const Candidates& c, std::size_t k, Metric metric) {
  ctx_->make_current();
  const std::size_t q_count = queries.rows(), kept = std::min(k, c.rows);
  TileShape shape;
  shape.queries = q_count;
  shape.candidates = c.rows;
  shape.dim = c.dim;
  shape.kept = kept;
  shape.host = c.host != nullptr;
  shape.half = is_half(c.precision);
  auto fixed = [&](std::size_t q) {
    return block_fixed_bytes(q, c.dim, kept, c.precision, metric);
  };
  const std::size_t scratch = ctx_->scratch_bytes();
  const std::optional<SearchPlan> plan =
      plan_search(shape, scratch, GpuContext::kPinnedBytes, fixed);
  if (!plan) {
    if (shape.host && c.dim * sizeof(float) > GpuContext::kPinnedBytes) {
      throw GpuOutOfMemory("a host row of dim " + std::to_string(c.dim) +
                           " is larger than the pinned staging buffer (" +
                           std::to_string(GpuContext::kPinnedBytes >> 20) + " MiB)");
    }
    throw GpuOutOfMemory("GPU search with k = " + std::to_string(kept) + " over " +
                         std::to_string(c.rows) + " candidates needs more than the " +
                         std::to_string(scratch >> 20) +
                         " MiB of scratch GpuOptions::memory_budget_bytes leaves, even for one "
                         "query");
  }
  if (plan->blocks == 1) return run_block(queries, c, kept, metric, plan->tiles);
  Hits hits(q_count, kept);
  for (std::size_t first = 0; first < q_count; first += plan->query_block) {
    const std::size_t count = std::min(plan->query_block, q_count - first);
    std::optional<TilePlan> tiles = plan->tiles;
    if (count != plan->query_block) {  // the last, shorter block: planned as plan_search checked
      TileShape block = shape;
      block.queries = count;
      tiles = plan_tiles(block, scratch - fixed(count), GpuContext::kPinnedBytes);
      if (!tiles) throw Error(ErrorCode::Internal, "GPU search: the last query block has no plan");
    }
    const Hits part = run_block(queries.slice(first, count), c, kept, metric, *tiles);
    for (std::size_t q = 0; q < count; ++q) {
      std::copy_n(part.scores(q).begin(), kept, hits.mutable_scores(first + q).begin());
      std::copy_n(part.ids(q).begin(), kept, hits.mutable_ids(first + q).begin());
    }
  }
  return hits;
}

Hits CudaGpuTier::run_block(MatrixView queries, const Candidates& c, std::size_t kept,
                            Metric metric, const TilePlan& plan) {
  ctx_->reset_scratch();
  const std::size_t q_count = queries.rows();
  const bool scan = uses_scan(q_count, c.dim);
  const QueriesOnDevice q = upload_queries(queries, c.precision, scan, metric != Metric::Dot);
  MergeBuffers m;
  m.selected = ctx_->take<std::uint64_t>(q_count * kept);
  if (kept > kQueueSelectMaxK) {
    m.sorted = ctx_->take<std::uint64_t>(q_count * kept);
    m.offsets = ctx_->take<int>(q_count + 1);
    m.temp_bytes = sort_temp_bytes(static_cast<int>(q_count), kept);
    m.temp = ctx_->take(m.temp_bytes);
  }
  m.partial = ctx_->take<std::uint64_t>(q_count * plan.partial_ld);
  stream_tiles(c, q, q_count, metric, scan, plan, m.partial);
  return decode_hits(merge_keys(m, plan, q_count, kept), q_count, kept, metric);
}

std::shared_ptr<detail::DeviceRows> CudaGpuTier::upload(MatrixView candidates, Precision p) {
  auto set = allocate(candidates.rows(), candidates.dim(), p);
  write_rows(*set, 0, candidates);
  return set;
}

std::shared_ptr<detail::DeviceRows> CudaGpuTier::allocate(std::size_t n, std::size_t dim,
                                                          Precision p) {
  if (dim == 0) throw Error(ErrorCode::InvalidArgument, "upload needs vectors of dim >= 1");
  std::lock_guard lock(ctx_->mutex());
  ctx_->make_current();
  auto set = std::make_shared<detail::DeviceRows>();
  set->rows = n;
  set->dim = dim;
  set->precision = p;
  set->bytes = n * dim * element_bytes(p) + n * sizeof(float);
  set->data = device_memory(n * dim * element_bytes(p), "cudaMalloc(candidates)");
  set->norms = device_memory(n * sizeof(float), "cudaMalloc(norms)");
  return set;
}

std::shared_ptr<void> CudaGpuTier::device_memory(std::size_t bytes, const char* what) {
  void* ptr = nullptr;
  check(cudaMalloc(&ptr, std::max<std::size_t>(bytes, 1)), what);
  return std::shared_ptr<void>(ptr, [ctx = ctx_](void* q) {
    cudaSetDevice(ctx->device());  // a destructor cannot report a failure
    cudaFree(q);
  });
}

void CudaGpuTier::write_rows(detail::DeviceRows& set, std::size_t first, MatrixView rows) {
  const std::size_t n = rows.rows(), dim = set.dim;
  if (rows.dim() != dim || first > set.rows || n > set.rows - first) {
    throw Error(ErrorCode::InvalidArgument,
                "write_rows: rows [" + std::to_string(first) + ", " + std::to_string(first + n) +
                    ") of dim " + std::to_string(rows.dim()) + " do not fit a device set of " +
                    std::to_string(set.rows) + " x " + std::to_string(dim));
  }
  if (n == 0) return;
  std::lock_guard lock(ctx_->mutex());
  if (lost_.load()) throw Error(ErrorCode::GpuError, "write_rows: " + stats().reason);
  ctx_->make_current();
  try {
    copy_rows(set, first, rows);
  } catch (...) {
    settle();  // no copy may still read the caller's rows or the scratch
    if (auto why = device_lost()) lose(*why);
    throw;
  }
}

void CudaGpuTier::copy_rows(detail::DeviceRows& set, std::size_t first, MatrixView rows) {
  const std::size_t n = rows.rows(), dim = set.dim;
  const Precision p = set.precision;
  char* base = static_cast<char*>(set.data.get()) + first * dim * element_bytes(p);
  cudaStream_t s0 = ctx_->stream(0);
  if (!is_half(p)) {
    check(cudaMemcpy2DAsync(base, dim * sizeof(float), rows.data(), rows.stride() * sizeof(float),
                            dim * sizeof(float), n, cudaMemcpyHostToDevice, s0),
          "cudaMemcpy2DAsync(upload)");
  } else {
    // Through f32 chunks in the scratch (at most 64 MiB, at most the scratch), converted into
    // place: no allocation per call.
    ctx_->reset_scratch();
    const std::size_t row_bytes = dim * sizeof(float);
    const std::size_t chunk_rows =
        std::min(n, std::min(std::size_t{64} << 20, ctx_->scratch_bytes()) / row_bytes);
    if (chunk_rows == 0) {
      throw GpuOutOfMemory("write_rows: a row of dim " + std::to_string(dim) +
                           " is larger than the GPU scratch");
    }
    float* chunk = ctx_->take<float>(chunk_rows * dim);
    for (std::size_t r = 0; r < n; r += chunk_rows) {
      const std::size_t count = std::min(chunk_rows, n - r);
      check(cudaMemcpy2DAsync(chunk, row_bytes, rows.data() + r * rows.stride(),
                              rows.stride() * sizeof(float), row_bytes, count,
                              cudaMemcpyHostToDevice, s0),
            "cudaMemcpy2DAsync(upload)");
      convert(chunk, count * dim, base + r * dim * 2, p, s0);
    }
  }
  bytes_to_device_.fetch_add(n * dim * sizeof(float));
  launch_row_sq_norms(base, p, n, dim, static_cast<float*>(set.norms.get()) + first, s0);
  check(cudaStreamSynchronize(s0), "cudaStreamSynchronize");
}

Matrix CudaGpuTier::download(const detail::DeviceRows& set) {
  std::lock_guard lock(ctx_->mutex());
  ctx_->make_current();
  Matrix out(set.rows, set.dim);
  if (!is_half(set.precision)) {
    check(cudaMemcpy2D(out.data(), out.stride() * sizeof(float), set.data.get(),
                       set.dim * sizeof(float), set.dim * sizeof(float), set.rows,
                       cudaMemcpyDeviceToHost),
          "cudaMemcpy2D(download)");
    return out;
  }
  std::vector<std::uint16_t> raw(set.rows * set.dim);
  check(cudaMemcpy(raw.data(), set.data.get(), raw.size() * 2, cudaMemcpyDeviceToHost),
        "cudaMemcpy(download)");
  for (std::size_t r = 0; r < set.rows; ++r) {
    for (std::size_t j = 0; j < set.dim; ++j) {
      const std::uint16_t bits = raw[r * set.dim + j];
      float v;
      if (set.precision == Precision::Bf16) {
        const std::uint32_t wide = std::uint32_t{bits} << 16;
        std::memcpy(&v, &wide, sizeof v);
      } else {
        __half_raw raw_half;
        raw_half.x = bits;
        v = __half2float(__half(raw_half));
      }
      out.row(r)[j] = v;
    }
  }
  return out;
}

}  // namespace

std::unique_ptr<GpuTier> make_cuda_gpu_tier(const GpuOptions& options) {
  if (!options.enable) return make_absent_gpu_tier("disabled (GpuOptions::enable is false)");
  std::string why_not;
  try {
    auto context = GpuContext::open(options, why_not);
    if (context == nullptr) return make_absent_gpu_tier(why_not);
    return std::make_unique<CudaGpuTier>(std::move(context));
  } catch (const Error& e) {
    return make_absent_gpu_tier(std::string("CUDA setup failed: ") + e.what());
  }
}

}  // namespace hetcache::gpu
