// The GPU tier's tiling, run on the host: the same header the CUDA tier plans with
// (src/compute/cuda/tile_plan.hpp). A plan must fit the scratch it is given, cover every candidate,
// keep every key the final merge needs, and use the largest tile that fits.
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "compute/cuda/tile_plan.hpp"

namespace hetcache::gpu {
namespace {

constexpr std::size_t kPinned = kPinnedStagingBytes;  // what the CUDA tier stages through
constexpr std::size_t kGiB = std::size_t{1} << 30;

TileShape shape(std::size_t q, std::size_t n, std::size_t d, std::size_t k, bool host,
                bool half = false) {
  TileShape s;
  s.queries = q;
  s.candidates = n;
  s.dim = d;
  s.kept = std::min(k, n);
  s.host = host;
  s.half = half;
  return s;
}

void expect_consistent(const TileShape& s, const TilePlan& p, std::size_t left) {
  EXPECT_LE(p.bytes, left);
  EXPECT_GE(p.tile * p.tiles, s.candidates);              // every candidate is in a tile
  EXPECT_LT((p.tiles - 1) * p.tile, s.candidates);        // and no tile is empty
  EXPECT_GE(p.chunks * p.chunk_rows, p.tile);             // every row of a tile is in a chunk
  EXPECT_EQ(p.keep, std::min(s.kept, p.chunk_rows));      // a chunk keeps all it can of k
  EXPECT_EQ(p.partial_ld, p.tiles * p.chunks * p.keep);   // the merge sees every chunk's keys
  EXPECT_GE(p.partial_ld, s.kept);                        // enough keys for the top-k
  if (s.host) {
    EXPECT_LE(p.tile * s.dim * sizeof(float), kPinned);  // a tile fits the staging
  }
}

TEST(TilePlan, FitsTheScratchAndCoversEveryCandidate) {
  for (const bool host : {false, true}) {
    for (const bool half : {false, true}) {
      for (const std::size_t q : {1, 7, 64, 1000}) {
        for (const std::size_t n : {1, 255, 4097, 1'000'000}) {
          for (const std::size_t k : {1, 10, 300}) {
            const TileShape s = shape(q, n, 768, k, host, half);
            for (const std::size_t left : {kGiB / 64, kGiB, 8 * kGiB}) {
              const auto plan = plan_tiles(s, left, kPinned);
              SCOPED_TRACE(testing::Message() << "q " << q << " n " << n << " k " << k << " host "
                                              << host << " half " << half << " left " << left);
              if (!plan) {
                // Refused only when not even the smallest tile fits.
                EXPECT_GT(plan_for(s, std::min(n, kMinTileRows)).bytes, left);
                continue;
              }
              expect_consistent(s, *plan, left);
            }
          }
        }
      }
    }
  }
}

TEST(TilePlan, UsesTheLargestTileThatFits) {
  // 1M x 768 device-resident, 256 queries, k = 10, 256 MiB of scratch: 65536-row tiles need
  // 2 x 256 x 65536 x 4 = 128 MiB of scores plus the keys; the plan halves only while it must.
  const TileShape s = shape(256, 1'000'000, 768, 10, false);
  const std::size_t left = std::size_t{256} << 20;
  const auto plan = plan_tiles(s, left, kPinned);
  ASSERT_TRUE(plan);
  expect_consistent(s, *plan, left);
  EXPECT_EQ(plan->tile, kMaxTileRows);
  // Two slots of 256 x 65536 scores, 16 tiles x 10 keys per query, the alignment slack.
  EXPECT_EQ(plan->bytes, 2u * 256 * 65536 * 4 + 256u * 16 * 10 * 8 + kScratchAlignmentSlack);
  // Host tiles add, per slot, the f32 rows, their half copy and their norms.
  const TileShape half_host = shape(256, 1'000'000, 768, 10, true, true);
  const auto host_plan = plan_for(half_host, 1000);
  EXPECT_EQ(host_plan.bytes, 2u * (256 * 1000 * 4 + 1000 * 768 * 4 + 1000 * 768 * 2 + 1000 * 4) +
                                 256u * 1000 * 10 * 8 + kScratchAlignmentSlack);
  // A budget just below what that tile needs halves it once.
  const auto smaller = plan_tiles(s, plan->bytes - 1, kPinned);
  ASSERT_TRUE(smaller);
  EXPECT_EQ(smaller->tile, kMaxTileRows / 2);
  // Host candidates: a tile is at most one pinned buffer of rows (32 MiB / 3 KiB = 10922).
  const auto streamed = plan_tiles(shape(256, 1'000'000, 768, 10, true), 8 * kGiB, kPinned);
  ASSERT_TRUE(streamed);
  EXPECT_EQ(streamed->tile, kPinned / (768 * sizeof(float)));
}

TEST(TilePlan, FewQueriesTakeLargerTilesSplitIntoChunksWideQueriesDoNot) {
  const auto few = plan_tiles(shape(1, 1'000'000, 768, 10, false), 8 * kGiB, kPinned);
  ASSERT_TRUE(few);
  EXPECT_EQ(few->tile, kMaxFewQueryTileRows);
  EXPECT_EQ(few->tiles, 4u);
  EXPECT_EQ(few->chunks, kMaxFewQueryTileRows / kMinChunkRows);  // 64 chunks of 4096 rows
  const auto eight = plan_tiles(shape(kFewQueries, 1'000'000, 768, 10, false), 8 * kGiB, kPinned);
  ASSERT_TRUE(eight);
  EXPECT_EQ(eight->tile, kMaxFewQueryTileRows);
  EXPECT_EQ(eight->chunks, kWideQueries * 4 / kFewQueries);  // 32 chunks of 8192 rows
  const auto nine =
      plan_tiles(shape(kFewQueries + 1, 1'000'000, 768, 10, false), 8 * kGiB, kPinned);
  ASSERT_TRUE(nine);
  EXPECT_EQ(nine->tile, kMaxTileRows);
  const auto wide = plan_tiles(shape(kWideQueries, 1'000'000, 768, 10, false), 8 * kGiB, kPinned);
  ASSERT_TRUE(wide);
  EXPECT_EQ(wide->tile, kMaxTileRows);
  EXPECT_EQ(wide->chunks, 1u);
  // A large k makes chunks fewer (a tile over chunks of about 4 k rows), so each keeps a small
  // part of its rows: ceil(262144 / 8000) = 33 chunks of 7944 rows, each keeping all 2000.
  const auto large_k = plan_tiles(shape(1, 1'000'000, 768, 2000, false), 8 * kGiB, kPinned);
  ASSERT_TRUE(large_k);
  EXPECT_EQ(large_k->chunks, 33u);
  EXPECT_EQ(large_k->keep, 2000u);
}

TEST(TilePlan, RefusesWhenNotEvenTheSmallestTileFits) {
  // 100k queries' keys of 1M candidates cannot fit 16 MiB.
  EXPECT_FALSE(plan_tiles(shape(100'000, 1'000'000, 768, 10, false), 16u << 20, kPinned));
  EXPECT_FALSE(plan_tiles(shape(1, 10, 4, 1, false), 0, kPinned));
}

TEST(TilePlan, AHostRowLargerThanTheStagingBufferIsRefusedNotOverrun) {
  // One row of exactly the buffer streams one row per tile; one float more cannot be staged.
  const std::size_t fits = kPinned / sizeof(float);
  const auto one_row = plan_tiles(shape(1, 3, fits, 1, true), 8 * kGiB, kPinned);
  ASSERT_TRUE(one_row);
  EXPECT_EQ(one_row->tile, 1u);
  EXPECT_FALSE(plan_tiles(shape(1, 3, fits + 1, 1, true), 8 * kGiB, kPinned));
  // Device-resident rows are not staged: any dim plans.
  EXPECT_TRUE(plan_tiles(shape(1, 3, fits + 1, 1, false), 8 * kGiB, kPinned));
}

// What a block of q queries takes before its tiles, as the CUDA tier counts it for f32 Cosine
// (queries, their norms, the merged keys; for k > 256 the sort's buffers, with CUB's temporary
// storage taken as one more key per query and k).
auto fixed_bytes(std::size_t dim, std::size_t kept) {
  return [=](std::size_t q) {
    std::size_t bytes = q * dim * 4 + q * 4 + q * kept * 8;
    if (kept > 256) bytes += 2 * q * kept * 8 + (q + 1) * 4;
    return bytes;
  };
}

void expect_search_plan(const TileShape& s, std::size_t budget, const SearchPlan& plan) {
  const auto fixed = fixed_bytes(s.dim, s.kept);
  EXPECT_EQ(plan.blocks, (s.queries + plan.query_block - 1) / plan.query_block);
  EXPECT_LE(plan.query_block * s.kept, kMaxBlockKeys);
  TileShape block = s;
  block.queries = plan.query_block;
  expect_consistent(block, plan.tiles, budget - fixed(plan.query_block));
  EXPECT_LE(fixed(plan.query_block) + plan.tiles.bytes, budget);
  // The last block, when shorter, has a plan of its own within the budget too.
  if (const std::size_t last = s.queries % plan.query_block; last != 0) {
    block.queries = last;
    const auto tail = plan_tiles(block, budget - fixed(last), kPinned);
    ASSERT_TRUE(tail);
    EXPECT_LE(fixed(last) + tail->bytes, budget);
  }
}

TEST(TilePlan, QueriesAreCutIntoBlocksWhenNoTileSizeAloneFits) {
  // The default budget on a large device: 4 GiB, less two 32 MiB cuBLAS workspaces.
  const std::size_t budget = 4 * kGiB - 64 * (std::size_t{1} << 20);
  // Q = 10k over 10M device-resident rows, k = 100: a 65536-row tile's scores take 5 GiB, and a
  // smaller tile makes the per-tile keys (Q x tiles x k) grow past the budget. Cutting the
  // queries fits.
  const TileShape resident = shape(10'000, 10'000'000, 768, 100, false);
  for (std::size_t t = kMaxTileRows; t >= kMinTileRows; t /= 2) {
    EXPECT_GT(plan_for(resident, t).bytes, budget) << "tile " << t;
  }
  EXPECT_FALSE(plan_tiles(resident, budget, kPinned));
  const auto blocked = plan_search(resident, budget, kPinned, fixed_bytes(768, 100));
  ASSERT_TRUE(blocked);
  EXPECT_GT(blocked->blocks, 1u);
  expect_search_plan(resident, budget, *blocked);
  // Q = 1000 streamed from the host over 10M rows, k = 1000: the same, with the sort's buffers.
  const TileShape streamed = shape(1000, 10'000'000, 768, 1000, true);
  EXPECT_FALSE(plan_tiles(streamed, budget - fixed_bytes(768, 1000)(1000), kPinned));
  const auto streamed_plan = plan_search(streamed, budget, kPinned, fixed_bytes(768, 1000));
  ASSERT_TRUE(streamed_plan);
  EXPECT_GT(streamed_plan->blocks, 1u);
  expect_search_plan(streamed, budget, *streamed_plan);
}

TEST(TilePlan, EveryBlockOfASearchPlanFitsAtEveryBudget) {
  // A shorter last block can need more than a full one (under 64 queries a tile is split into
  // chunks, each keeping k keys): Q = 127 runs as blocks of 64 and a last block of 63.
  for (const bool host : {false, true}) {
    for (const std::size_t q : {127, 1000, 10'000}) {
      for (const std::size_t k : {10, 100, 1000}) {
        const TileShape s = shape(q, 1'000'000, 32, k, host);
        for (double budget = 1 << 20; budget < 8.0 * kGiB; budget *= 1.07) {
          const auto b = static_cast<std::size_t>(budget);
          const auto plan = plan_search(s, b, kPinned, fixed_bytes(32, k));
          if (!plan) continue;
          SCOPED_TRACE(testing::Message() << "q " << q << " k " << k << " host " << host
                                          << " budget " << b << " block " << plan->query_block);
          expect_search_plan(s, b, *plan);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST(TilePlan, AllQueriesInOneBlockWhenTheyFit) {
  const std::size_t budget = kGiB;
  const TileShape s = shape(256, 1'000'000, 768, 10, false);
  const auto plan = plan_search(s, budget, kPinned, fixed_bytes(768, 10));
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->blocks, 1u);
  EXPECT_EQ(plan->query_block, 256u);
  const auto tiles = plan_tiles(s, budget - fixed_bytes(768, 10)(256), kPinned);
  ASSERT_TRUE(tiles);
  EXPECT_EQ(plan->tiles.tile, tiles->tile);
}

TEST(TilePlan, ABlockRanksAtMost2To31KeysForTheKernelsInts) {
  // 3M queries x k = 1000 is 3e9 keys: more than one block even with room to spare.
  const TileShape s = shape(3'000'000, 2000, 8, 1000, false);
  const auto plan = plan_search(s, std::size_t{1} << 50, kPinned, fixed_bytes(8, 1000));
  ASSERT_TRUE(plan);
  EXPECT_GE(plan->blocks, 2u);
  EXPECT_LE(plan->query_block * 1000, kMaxBlockKeys);
}

TEST(TilePlan, NoPlanWhenNotEvenOneQueryFits) {
  const TileShape s = shape(10, 1'000'000, 768, 100, false);
  EXPECT_FALSE(plan_search(s, 64 << 10, kPinned, fixed_bytes(768, 100)));
  EXPECT_FALSE(plan_search(shape(4, 10, kPinned / 4 + 1, 1, true), 8 * kGiB, kPinned,
                           fixed_bytes(kPinned / 4 + 1, 1)));
}

}  // namespace
}  // namespace hetcache::gpu
