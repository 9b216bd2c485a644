// Private: how the GPU tier cuts one search into tiles -- plain C++, so the host test suite checks
// the sizing the CUDA tier uses (tests/gpu/tile_plan_test.cpp).
//
// A search of Q queries over N candidates runs in blocks of queries (plan_search), and each block
// in tiles of T candidate rows, two tiles in flight (one per stream). Each tile keeps each query's
// best keys per chunk of the tile; every chunk's keys of every tile stay on the device until the
// block's final merge. The tile is as large as the scratch left by the queries and the merge
// allows (and, for host candidates, the pinned staging buffer).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace hetcache::gpu {

// Bytes of each stream's pinned staging buffer (GpuContext allocates them): bounds a host tile.
inline constexpr std::size_t kPinnedStagingBytes = std::size_t{32} << 20;

inline constexpr std::size_t kMaxTileRows = 65536;
// Up to kFewQueries queries (the scan kernel's kScanMaxQueries, checked in gpu_kernels.cu), a tile
// holds up to kMaxFewQueryTileRows rows: such a tile's scores are quick (one query reads 65536 x
// 768 f32 in about 50 us on an H200) next to its select (about 30 us, which the other stream's
// tile barely overlaps), so four times fewer tiles cut the selects' share of the search; the
// chunks keep each select block at >= kMinChunkRows rows.
inline constexpr std::size_t kFewQueries = 8;
inline constexpr std::size_t kMaxFewQueryTileRows = 4 * kMaxTileRows;
// Below this many queries a tile's select is split into chunks of at least kMinChunkRows rows, so
// that about 4 x kWideQueries select blocks run per tile (one block per query and tile would
// leave most of the GPU idle).
inline constexpr std::size_t kWideQueries = 64;
inline constexpr std::size_t kMinChunkRows = 4096;
// What the pieces carved after the plan can lose to alignment: up to 16 pieces of 256 bytes.
inline constexpr std::size_t kScratchAlignmentSlack = 16 * 256;
inline constexpr std::size_t kMinTileRows = 256;

// The shape of one search as the tiling sees it.
struct TileShape {
  std::size_t queries = 0;     // Q >= 1
  std::size_t candidates = 0;  // N >= 1
  std::size_t dim = 0;         // d >= 1
  std::size_t kept = 0;        // min(k, N) >= 1
  bool host = false;           // candidates streamed from host memory (else device-resident)
  bool half = false;           // a bf16 / f16 GEMM: host tiles are converted on the device
};

struct TilePlan {
  std::size_t tile = 0;        // candidate rows per tile
  std::size_t tiles = 0;       // ceil(N / tile)
  std::size_t chunks = 0;      // select chunks per tile
  std::size_t chunk_rows = 0;  // ceil(tile / chunks)
  std::size_t keep = 0;        // keys kept per query and chunk: min(kept, chunk_rows)
  std::size_t tile_ld = 0;     // keys per query and tile: chunks x keep
  std::size_t partial_ld = 0;  // keys per query over every tile: tiles x tile_ld
  std::size_t bytes = 0;       // scratch the tiles and the partial keys take
};

// Select chunks per tile of t rows.
inline std::size_t chunks_for(const TileShape& s, std::size_t t) {
  if (s.queries >= kWideQueries) return 1;
  const std::size_t min_chunk_rows = std::max<std::size_t>(kMinChunkRows, 4 * s.kept);
  return std::max<std::size_t>(
      1, std::min<std::size_t>((t + min_chunk_rows - 1) / min_chunk_rows,
                               kWideQueries * 4 / s.queries));
}

// The plan for tiles of t rows, with the scratch it needs: two slots (one per stream) of scores
// and, for host candidates, the tile's f32 rows, their half copy and norms; every chunk's kept
// keys; the alignment slack of the pieces.
inline TilePlan plan_for(const TileShape& s, std::size_t t) {
  TilePlan p;
  p.tile = t;
  p.tiles = (s.candidates + t - 1) / t;
  p.chunks = chunks_for(s, t);
  p.chunk_rows = (t + p.chunks - 1) / p.chunks;
  p.keep = std::min(s.kept, p.chunk_rows);
  p.tile_ld = p.chunks * p.keep;
  p.partial_ld = p.tiles * p.tile_ld;
  std::size_t per_slot = s.queries * t * sizeof(float);  // scores
  if (s.host) per_slot += t * s.dim * sizeof(float) + (s.half ? t * s.dim * 2 : 0) + t * sizeof(float);
  p.bytes = 2 * per_slot + s.queries * p.partial_ld * sizeof(std::uint64_t) + kScratchAlignmentSlack;
  return p;
}

// The most rows a tile of this shape may hold.
inline std::size_t max_tile_rows(const TileShape& s) {
  return s.queries <= kFewQueries ? kMaxFewQueryTileRows : kMaxTileRows;
}

// The largest tile (halving from min(N, max_tile_rows), and for host candidates what one pinned
// staging buffer of `pinned_bytes` holds) whose plan fits in `scratch_left` bytes; nullopt when not
// even a tile of kMinTileRows rows (or N, if smaller) fits, or when one host row is larger than
// the staging buffer.
inline std::optional<TilePlan> plan_tiles(const TileShape& s, std::size_t scratch_left,
                                          std::size_t pinned_bytes) {
  std::size_t tile = std::min(s.candidates, max_tile_rows(s));
  if (s.host) {
    const std::size_t fit = pinned_bytes / (s.dim * sizeof(float));
    if (fit == 0) return std::nullopt;
    tile = std::min(tile, fit);
  }
  TilePlan plan = plan_for(s, tile);
  while (tile > kMinTileRows && plan.bytes > scratch_left) {
    tile /= 2;
    plan = plan_for(s, tile);
  }
  if (plan.bytes > scratch_left) return std::nullopt;
  return plan;
}

// Most keys one block of queries may rank (queries x kept): the kernels index them with int.
inline constexpr std::size_t kMaxBlockKeys = 0x7FFFFFFF;

// A whole search: the queries in blocks of query_block (each block one pass over every candidate
// tile, then its merge), as FAISS's chooseTileSize tiles both sides. Cutting the queries is what
// makes a large Q x N x k fit: a block's partial keys (queries x tiles x keep) shrink with the
// block, whereas halving the tile makes them grow.
struct SearchPlan {
  std::size_t query_block = 0;  // queries per block; the last block may hold fewer
  std::size_t blocks = 0;       // ceil(Q / query_block)
  TilePlan tiles;               // the plan of a full block
};

// The largest query block (halving from Q) for which a full block and the last, shorter one both
// plan within `budget` bytes; fixed_bytes(q) is what a block of q queries takes before its tiles
// (its queries on the device, its merge and sort buffers). nullopt when one query does not fit.
template <typename FixedBytes>
std::optional<SearchPlan> plan_search(const TileShape& s, std::size_t budget,
                                      std::size_t pinned_bytes, FixedBytes&& fixed_bytes) {
  auto block_plan = [&](std::size_t q) -> std::optional<TilePlan> {
    const std::size_t fixed = fixed_bytes(q);
    if (q * s.kept > kMaxBlockKeys || fixed >= budget) return std::nullopt;
    TileShape block = s;
    block.queries = q;
    return plan_tiles(block, budget - fixed, pinned_bytes);
  };
  for (std::size_t q = s.queries;; q = (q + 1) / 2) {
    const std::optional<TilePlan> full = block_plan(q);
    const std::size_t last = s.queries % q;
    if (full && (last == 0 || block_plan(last))) {
      return SearchPlan{q, (s.queries + q - 1) / q, *full};
    }
    if (q == 1) return std::nullopt;
  }
}

}  // namespace hetcache::gpu
