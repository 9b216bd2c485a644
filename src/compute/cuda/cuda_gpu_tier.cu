// src/compute/cuda: the GPU tier on CUDA and cuBLAS -- the device context and its memory budget
// (gpu_context.cu), the kernels (gpu_kernels.cu) and this tier (its class in cuda_gpu_tier.hpp,
// its device-resident sets in cuda_device_rows.cu). Only this folder includes CUDA
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
#include "compute/cuda/cuda_gpu_tier.hpp"

#include <hetcache/error.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

#include "compute/cuda/cuda_check.hpp"
#include "compute/cuda/queue_select.hpp"

namespace hetcache::gpu {
namespace {

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


}  // namespace
// The queries on the device: f32 (scan, f32/tf32 GEMM), converted for a half-precision GEMM, and
// their squared norms for Cosine and L2.
CudaGpuTier::QueriesOnDevice CudaGpuTier::upload_queries(MatrixView queries, Precision p,
                                                         bool scan, bool norms) {
  const std::size_t q_count = queries.rows(), dim = queries.dim();
  cudaStream_t s0 = ctx_->stream(0);
  QueriesOnDevice q;
  q.f32 = ctx_->take<float>(q_count * dim);
  check(cudaMemcpy2DAsync(q.f32, dim * sizeof(float), queries.data(),
                          queries.stride() * sizeof(float), dim * sizeof(float), q_count,
                          cudaMemcpyHostToDevice, s0),
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

// Each query's best `kept` keys, in order, from every tile's partial keys: merged by a second
// select when there was more than one tile or chunk, sorted when the radix select (kept > the queue
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

namespace {

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

}  // namespace

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
