// The memory tier on its own: bounds, CLOCK, overwrite, expiry, search over slabs in place.
#include <gtest/gtest.h>

#include <malloc.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "cache/cache_test_util.hpp"
#include "cache/memory/memory_store.hpp"
#include "reference.hpp"

namespace hetcache::test {
namespace {

using cache::MemoryStore;
constexpr std::int64_t kNow = 1'000'000;
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

void put(MemoryStore& store, const std::string& key, std::uint64_t version,
         std::int64_t expiry = kNever, MemoryStore::PutCounts* counts = nullptr) {
  MemoryStore::PutCounts local;
  store.put(key, vector_for(key, version, store.dim()).data(), expiry, false, kNow,
            counts ? *counts : local);
}

TEST(MemoryStore, BoundsOnEntriesHoldUnderChurn) {
  MemoryStore store(33, std::size_t{1} << 30, 1000);
  EXPECT_EQ(store.capacity_entries(), 1000u);
  MemoryStore::PutCounts counts;
  for (std::size_t i = 0; i < 20000; ++i) {
    put(store, "k" + std::to_string(i), 1, kNever, &counts);
    ASSERT_LE(store.entries(), 1000u);
  }
  EXPECT_EQ(counts.evicted_live, 20000u - store.entries());
  EXPECT_GT(store.entries(), 900u);  // the bound is used, not just respected
}

TEST(MemoryStore, BoundsOnBytesHoldWithMixedKeyLengths) {
  const std::size_t max_bytes = 2'000'000;
  MemoryStore store(100, max_bytes, 0);
  std::mt19937_64 rng(test_seed());
  std::uniform_int_distribution<std::size_t> length(1, 3000);
  for (std::size_t i = 0; i < 5000; ++i) {
    std::string key(length(rng), 'a');
    key += std::to_string(i);
    if (store.charge(key.size()) > store.max_charge()) continue;
    put(store, key, 1);
    ASSERT_LE(store.bytes(), max_bytes);
  }
  EXPECT_GT(store.bytes(), max_bytes / 2);
}

TEST(MemoryStore, TooSmallBoundsAreRejected) {
  EXPECT_THROW(MemoryStore(768, 1000, 0), Error);
  EXPECT_THROW(MemoryStore(0, 1 << 20, 0), Error);
}

TEST(MemoryStore, OverwriteNeverEvicts) {
  MemoryStore store(16, std::size_t{1} << 30, 200);
  for (std::size_t i = 0; i < 200; ++i) put(store, "k" + std::to_string(i), 1);
  ASSERT_EQ(store.entries(), 200u);
  MemoryStore::PutCounts counts;
  for (std::uint64_t version = 2; version < 10; ++version) {
    for (std::size_t i = 0; i < 200; ++i)
      put(store, "k" + std::to_string(i), version, kNever, &counts);
  }
  EXPECT_EQ(counts.evicted_live, 0u);
  std::vector<float> out(16);
  for (std::size_t i = 0; i < 200; ++i) {
    const std::string key = "k" + std::to_string(i);
    ASSERT_EQ(store.get(key, out.data(), kNow), MemoryStore::Lookup::Hit);
    ASSERT_TRUE(row_equals(out.data(), vector_for(key, 9, 16)));
  }
}

TEST(MemoryStore, ClockKeepsKeysThatAreRead) {
  // One shard (capacity < 256), so the sweep order is the insertion order.
  MemoryStore store(8, std::size_t{1} << 30, 100);
  ASSERT_EQ(store.shard_count(), 1u);
  std::vector<float> out(8);
  for (int i = 0; i < 100; ++i) put(store, "k" + std::to_string(i), 1);
  for (int i = 0; i < 100; i += 2)
    ASSERT_EQ(store.get("k" + std::to_string(i), out.data(), kNow), MemoryStore::Lookup::Hit);
  for (int i = 0; i < 50; ++i) put(store, "new" + std::to_string(i), 1);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(store.contains("k" + std::to_string(i), kNow), i % 2 == 0) << "k" << i;
  }
}

TEST(MemoryStore, ExpiredEntriesAreMissesAndGoFirst) {
  MemoryStore store(8, std::size_t{1} << 30, 100);
  std::vector<float> out(8);
  for (int i = 0; i < 100; ++i) {
    put(store, "k" + std::to_string(i), 1, i < 10 ? kNow - 1 : kNever);
    // Reading sets every live key's bit, so only expiry can pick victims.
    store.get("k" + std::to_string(i), out.data(), kNow);
  }
  EXPECT_EQ(store.get("k3", out.data(), kNow), MemoryStore::Lookup::Expired);
  MemoryStore::PutCounts counts;
  for (int i = 0; i < 10; ++i) put(store, "new" + std::to_string(i), 1, kNever, &counts);
  EXPECT_EQ(counts.evicted_expired, 10u);
  EXPECT_EQ(counts.evicted_live, 0u);
  for (int i = 10; i < 100; ++i) EXPECT_TRUE(store.contains("k" + std::to_string(i), kNow));
}

TEST(MemoryStore, CleanupExpiredRemovesOnlyExpired) {
  MemoryStore store(8, std::size_t{1} << 30, 0);
  for (int i = 0; i < 1000; ++i) put(store, "k" + std::to_string(i), 1, i % 3 == 0 ? kNow : kNever);
  EXPECT_EQ(store.cleanup_expired(kNow), 334u);
  EXPECT_EQ(store.entries(), 666u);
}

TEST(MemoryStore, OnlyIfAbsentLeavesExistingValue) {
  MemoryStore store(8, std::size_t{1} << 30, 0);
  put(store, "a", 1);
  MemoryStore::PutCounts counts;
  store.put("a", vector_for("a", 2, 8).data(), kNever, true, kNow, counts);
  std::vector<float> out(8);
  ASSERT_EQ(store.get("a", out.data(), kNow), MemoryStore::Lookup::Hit);
  EXPECT_TRUE(row_equals(out.data(), vector_for("a", 1, 8)));
}

// Search over slabs with holes (removed, expired, evicted rows) equals an engine search over the
// live rows packed into one matrix: same kernels, so the same scores bit for bit (and equal scores
// ordered by key, which random data occasionally produces).
TEST(MemoryStore, SearchEqualsPackedSearchOverLiveRows) {
  std::mt19937_64 rng(test_seed());
  SimilarityEngine engine;
  for (const std::size_t dim : {7u, 64u, 131u}) {
    MemoryStore store(dim, std::size_t{1} << 30, 6000);
    std::set<std::string> live;
    for (int i = 0; i < 9000; ++i) {
      const std::string key = "k" + std::to_string(i);
      const bool expires = i % 7 == 0;
      put(store, key, 1, expires ? kNow : kNever);
      if (i % 5 == 0) store.remove(key);
    }
    std::vector<std::string> live_keys;
    std::vector<float> scratch(dim);
    for (int i = 0; i < 9000; ++i) {
      const std::string key = "k" + std::to_string(i);
      if (store.get(key, scratch.data(), kNow) == MemoryStore::Lookup::Hit)
        live_keys.push_back(key);
    }
    ASSERT_GT(live_keys.size(), 1000u);
    const Matrix packed = matrix_for(live_keys, 1, dim);
    const TestMatrix queries = random_rows(rng, 5, dim);
    for (const Metric metric : {Metric::Dot, Metric::Cosine, Metric::L2}) {
      for (const std::size_t k : {1u, 10u, 100u})
        for (const Tier tier : {Tier::Sequential, Tier::Cpu}) {
          const auto ours = store.search(engine, queries.view(), k, metric, kNow, tier);
          const auto expected =
              expected_key_hits(engine, queries.view(), packed.view(), live_keys, k, metric);
          ASSERT_EQ(ours.size(), 5u);
          for (std::size_t q = 0; q < 5; ++q) {
            ASSERT_EQ(ours[q].size(), k);
            for (std::size_t h = 0; h < k; ++h) {
              EXPECT_EQ(ours[q][h].key, expected[q][h].key)
                  << "dim " << dim << " q " << q << " h " << h;
              EXPECT_EQ(ours[q][h].score, expected[q][h].score);
            }
          }
        }
    }
    // k larger than the live set gives every live entry once.
    const auto all = store.search(engine, queries.view(), 100000, Metric::Dot, kNow, Tier::Cpu);
    std::set<std::string> seen;
    for (const auto& hit : all[0]) seen.insert(hit.key);
    EXPECT_EQ(seen.size(), live_keys.size());
    EXPECT_EQ(all[0].size(), live_keys.size());
  }
}

// Every row keeps the squared norm of what it holds now: overwritten with another vector, evicted
// and reused by another key, removed, or cleared with the whole store. Live rows' norms equal the
// engine's, bit for bit; dead rows' are NaN; and Cosine and L2 search equal an engine search over
// the current values packed into one matrix.
TEST(MemoryStore, EveryRowKeepsItsExactNormThroughOverwriteEvictionAndClear) {
  constexpr std::size_t kDim = 37;
  SimilarityEngine engine;
  MemoryStore store(kDim, std::size_t{1} << 30, 500, engine.isa());
  std::mt19937_64 rng(test_seed() + 5);
  std::uniform_int_distribution<int> pick_key(0, 1499), pick_version(1, 5);
  std::map<std::string, std::uint64_t> version;
  for (int i = 0; i < 6000; ++i) {
    if (i == 2500) {
      store.clear();
      version.clear();
    }
    const std::string key = "k" + std::to_string(pick_key(rng));
    if (i % 13 == 0) {
      store.remove(key);
      version.erase(key);
      continue;
    }
    version[key] = static_cast<std::uint64_t>(pick_version(rng));
    put(store, key, version[key]);
  }
  std::vector<std::string> live_keys;
  std::vector<float> scratch(kDim);
  for (const auto& [key, v] : version) {
    if (store.get(key, scratch.data(), kNow) == MemoryStore::Lookup::Hit) live_keys.push_back(key);
  }
  ASSERT_GT(live_keys.size(), 400u);  // evictions happened (1500 keys, 500 entries)

  std::size_t live_rows = 0, dead_rows = 0;
  store.visit_locked(kNow, [&](const MemoryStore::LockedShards& shards) {
    for (std::size_t s = 0; s < shards.shards(); ++s) {
      for (const auto& slab : shards.slabs(s)) {
        ASSERT_EQ(slab.squared_norms.size(), slab.rows.rows());
        const std::vector<float> expected = engine.squared_norms(slab.rows);
        for (std::size_t r = 0; r < slab.rows.rows(); ++r) {
          if (shards.state(s, slab.first_slot + r) == MemoryStore::RowState::Live) {
            const std::string& key = shards.key(s, slab.first_slot + r);
            ASSERT_TRUE(row_equals(slab.rows.row(r), vector_for(key, version.at(key), kDim)));
            ASSERT_EQ(slab.squared_norms[r], expected[r]) << key;
            ++live_rows;
          } else {
            ASSERT_TRUE(std::isnan(slab.squared_norms[r])) << "shard " << s << " row " << r;
            ++dead_rows;
          }
        }
      }
    }
  });
  EXPECT_EQ(live_rows, live_keys.size());
  EXPECT_GT(dead_rows, 0u);

  Matrix packed(live_keys.size(), kDim);
  for (std::size_t i = 0; i < live_keys.size(); ++i) {
    const auto v = vector_for(live_keys[i], version.at(live_keys[i]), kDim);
    std::copy(v.begin(), v.end(), packed.row(i));
  }
  const TestMatrix queries = random_rows(rng, 3, kDim);
  for (const Metric metric : {Metric::Cosine, Metric::L2}) {
    const auto ours = store.search(engine, queries.view(), 20, metric, kNow, Tier::Sequential);
    const auto expected =
        expected_key_hits(engine, queries.view(), packed.view(), live_keys, 20, metric);
    for (std::size_t q = 0; q < 3; ++q) {
      ASSERT_EQ(ours[q].size(), 20u);
      for (std::size_t h = 0; h < 20; ++h) {
        EXPECT_EQ(ours[q][h].key, expected[q][h].key) << to_string(metric) << " q " << q;
        EXPECT_EQ(ours[q][h].score, expected[q][h].score) << to_string(metric) << " q " << q;
      }
    }
  }
}

// Slabs grow 16, 16, 32, ... 4096 rows per shard, then 4096 each: every row stays where it was put
// across every slab size, the 4096-row slabs past the first 4096 slots included.
TEST(MemoryStore, RowsKeepTheirValuesAcrossEverySlabSize) {
  // 64 shards of ~10240 entries (room for 16384 each): slots past 8192 are in a third 4096 slab.
  const std::size_t entries = 64 * 4096 * 5 / 2;
  MemoryStore store(3, std::size_t{1} << 30, 64 * 4096 * 4);
  for (std::size_t i = 0; i < entries; ++i) put(store, "k" + std::to_string(i), 1);
  ASSERT_EQ(store.entries(), entries);
  std::vector<float> out(3);
  for (std::size_t i = 0; i < entries; i += 7) {
    const std::string key = "k" + std::to_string(i);
    ASSERT_EQ(store.get(key, out.data(), kNow), MemoryStore::Lookup::Hit) << key;
    ASSERT_TRUE(row_equals(out.data(), vector_for(key, 1, 3))) << key;
  }
  // Each stored vector is its own best match by L2 (distance 0).
  SimilarityEngine engine;
  for (const std::size_t i : {std::size_t{0}, std::size_t{15}, std::size_t{16}, std::size_t{4095},
                              std::size_t{4096}, std::size_t{100000}, entries - 1}) {
    const std::string key = "k" + std::to_string(i);
    const auto v = vector_for(key, 1, 3);
    const auto hits =
        store.search(engine, MatrixView(v.data(), 1, 3), 1, Metric::L2, kNow, Tier::Sequential);
    ASSERT_EQ(hits[0].size(), 1u);
    EXPECT_EQ(hits[0][0].score, 0.0f) << key;
  }
}

// A cache bounded at 1 GiB allocates about what it holds, not a full slab per shard up front: 1000
// vectors of 768 floats (3 MB) cost well under 32 MiB. (It used to be 64 slabs of 12 MiB, zeroed:
// 800 MiB and ~0.4 s of page faults for the first thousand puts.)
TEST(MemoryStore, AFreshStoreAllocatesAboutWhatItHolds) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizer allocators do not report through mallinfo2";
#endif
  const auto heap_bytes = [] {
    const struct mallinfo2 m = ::mallinfo2();
    return m.uordblks + m.hblkhd;
  };
  const std::size_t before = heap_bytes();
  MemoryStore store(768, std::size_t{1} << 30, 0);
  for (std::size_t i = 0; i < 1000; ++i) put(store, "k" + std::to_string(i), 1);
  const std::size_t grown = heap_bytes() - before;
  EXPECT_LT(grown, std::size_t{32} << 20) << grown;
  EXPECT_GT(grown, std::size_t{1000} * 768 * 4);
}

}  // namespace
}  // namespace hetcache::test
