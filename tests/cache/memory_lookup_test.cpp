// The memory store's key lookups: its open-addressing index (slot_index.hpp) against a model under
// adversarial hashes, keys whose hashes share the index tag, and the batched, prefetching
// get_batch against one get per key.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "cache/cache_test_util.hpp"
#include "cache/memory/memory_store.hpp"
#include "cache/memory/slot_index.hpp"
#include "reference.hpp"

namespace hetcache::test {
namespace {

using cache::MemoryStore;
using cache::SlotIndex;
constexpr std::int64_t kNow = 1'000'000;
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

// Half the hashes crowded onto six home positions at the end of the table (so their run wraps
// around to the start), the other half anywhere, all with one of four tags: long runs, entries
// shifted past each other, every branch of the backward shift, at every table size up to 1024.
TEST(SlotIndex, MatchesAModelUnderCollidingHashesAndWrapAround) {
  std::mt19937_64 rng(test_seed());
  SlotIndex index;
  std::map<std::uint32_t, std::uint64_t> model;  // slot -> hash
  std::vector<std::uint64_t> hash_of_slot(4096);
  const auto hash_of = [&](std::uint32_t slot) { return hash_of_slot[slot]; };
  std::vector<std::uint32_t> free_slots;
  for (std::uint32_t s = 0; s < 4096; ++s) free_slots.push_back(s);
  for (int op = 0; op < 60000; ++op) {
    const bool add = model.empty() || (model.size() < 400 && rng() % 100 < 55);
    if (add) {
      const std::uint64_t low = rng() % 2 == 0 ? 0xFFFFFFFAu + rng() % 6 : rng() & 0xFFFFFFFFu;
      const std::uint64_t hash = (rng() % 4) << 32 | low;
      const std::uint32_t slot = free_slots.back();
      free_slots.pop_back();
      hash_of_slot[slot] = hash;
      index.reserve_one(hash_of);
      index.insert(hash, slot);
      model[slot] = hash;
    } else {
      auto it = model.begin();
      std::advance(it, static_cast<long>(rng() % model.size()));
      index.erase(it->second, it->first, hash_of);
      free_slots.push_back(it->first);
      model.erase(it);
    }
    ASSERT_EQ(index.size(), model.size());
    if (op % 97 == 0 || model.size() < 20) {
      for (const auto& [slot, hash] : model) {
        ASSERT_EQ(index.find(hash, [&, s = slot](std::uint32_t c) { return c == s; }), slot)
            << "op " << op << ": slot " << slot << " unreachable from its home";
      }
      // A slot not in the model is never found, even under a tag that is present.
      const std::uint32_t absent = free_slots.back();
      const std::uint64_t present_hash = model.empty() ? 0 : model.begin()->second;
      ASSERT_EQ(index.find(present_hash, [&](std::uint32_t c) { return c == absent; }),
                SlotIndex::kNone);
    }
  }
}

// "tag:99220" and "tag:204784" have XXH3 hashes with the same high half (the index tag) and the
// same low six bits (the same home in any table up to 64 entries): a lookup of either meets the
// other first, so only the key comparison tells them apart.
TEST(MemoryStore, KeysSharingTheirIndexTagAndHomeAreToldApart) {
  const std::string a = "tag:99220", b = "tag:204784";
  const std::uint64_t ha = XXH3_64bits(a.data(), a.size()), hb = XXH3_64bits(b.data(), b.size());
  ASSERT_EQ(ha >> 32, hb >> 32) << "the premise: the same tag";
  ASSERT_EQ(ha & 63, hb & 63) << "the premise: the same home";
  MemoryStore store(8, std::size_t{1} << 20, 20);
  ASSERT_EQ(store.shard_count(), 1u);
  MemoryStore::PutCounts counts;
  store.put(a, vector_for(a, 1, 8).data(), kNever, false, kNow, counts);
  for (int i = 0; i < 6; ++i) {
    const std::string key = "other" + std::to_string(i);
    store.put(key, vector_for(key, 1, 8).data(), kNever, false, kNow, counts);
  }
  // A batch past the ungrouped size takes the prefetching path; b is absent.
  std::vector<std::string_view> keys = {"other0", b, "other1", a, "other2", b, "other3"};
  Matrix out(keys.size(), 8);
  std::vector<MemoryStore::Lookup> results(keys.size());
  store.get_batch(keys, out.data(), out.stride(), kNow, results.data());
  EXPECT_EQ(results[1], MemoryStore::Lookup::Miss);
  EXPECT_EQ(results[5], MemoryStore::Lookup::Miss);
  ASSERT_EQ(results[3], MemoryStore::Lookup::Hit);
  EXPECT_TRUE(row_equals(out.row(3), vector_for(a, 1, 8)));
  std::vector<float> row(8);
  EXPECT_EQ(store.get(b, row.data(), kNow), MemoryStore::Lookup::Miss);
  EXPECT_FALSE(store.contains(b, kNow));

  store.put(b, vector_for(b, 2, 8).data(), kNever, false, kNow, counts);
  store.get_batch(keys, out.data(), out.stride(), kNow, results.data());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(results[i], MemoryStore::Lookup::Hit) << keys[i];
    EXPECT_TRUE(row_equals(out.row(i), vector_for(keys[i], keys[i] == b ? 2 : 1, 8))) << keys[i];
  }
  // Removing the first of the two moves the second back towards its home; it stays reachable.
  EXPECT_TRUE(store.remove(a));
  ASSERT_EQ(store.get(b, row.data(), kNow), MemoryStore::Lookup::Hit);
  EXPECT_TRUE(row_equals(row.data(), vector_for(b, 2, 8)));
  EXPECT_EQ(store.get(a, row.data(), kNow), MemoryStore::Lookup::Miss);
}

// A batch of thousands of keys over every shard -- present, missing, expired, removed, repeated,
// long keys beside short ones -- answers exactly what one get per key answers.
TEST(MemoryStore, BatchedLookupsEqualOneGetPerKey) {
  constexpr std::size_t kDim = 40;
  MemoryStore store(kDim, std::size_t{1} << 30, 20000);
  ASSERT_GT(store.shard_count(), 16u);
  std::mt19937_64 rng(test_seed());
  MemoryStore::PutCounts counts;
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < 12000; ++i) {
    std::string key = (i % 7 == 0 ? std::string(40, 'x') : std::string()) + "k" + std::to_string(i);
    keys.push_back(key);
    if (i % 3 == 0) continue;  // never stored
    store.put(key, vector_for(key, 1, kDim).data(), i % 11 == 0 ? kNow - 1 : kNever, false, kNow,
              counts);
    if (i % 13 == 0) store.remove(key);
  }
  for (int round = 0; round < 5; ++round) {
    std::vector<std::string_view> batch;
    for (std::size_t n = 0; n < 3000; ++n) batch.push_back(keys[rng() % keys.size()]);
    Matrix out(batch.size(), kDim);
    std::vector<MemoryStore::Lookup> results(batch.size());
    store.get_batch(batch, out.data(), out.stride(), kNow, results.data());
    std::set<MemoryStore::Lookup> seen;
    std::vector<float> row(kDim);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto expected = store.get(batch[i], row.data(), kNow);
      seen.insert(expected);
      ASSERT_EQ(results[i], expected) << batch[i];
      if (expected == MemoryStore::Lookup::Hit) {
        ASSERT_TRUE(row_equals(out.row(i), row)) << batch[i];
      }
    }
    EXPECT_EQ(seen.size(), 3u) << "the batch covered hits, misses and expired keys";
  }
}

}  // namespace
}  // namespace hetcache::test
