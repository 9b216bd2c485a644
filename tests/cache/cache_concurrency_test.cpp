// Threads doing mixed get / put / remove / get_batch / search on one cache, checked against a
// model. Each thread is the only writer of its own keys, so it knows exactly what each of them must
// hold; reads of other threads' keys must return some whole version that was written (never torn),
// and every search hit must score like one version of its key.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <mutex>
#include <random>
#include <thread>

#include "cache/cache_test_util.hpp"
#include "reference.hpp"

namespace hetcache::test {
namespace {

constexpr std::size_t kDim = 24;
constexpr std::size_t kThreads = 4;
constexpr std::size_t kKeysPerThread = 150;

// Version v of a key: element 0 holds v, the rest is vector_for(key, v).
std::vector<float> versioned(const std::string& key, std::uint32_t version) {
  auto v = vector_for(key, version, kDim);
  v[0] = static_cast<float>(version);
  return v;
}

std::string key_of(std::size_t thread, std::size_t i) {
  return "t" + std::to_string(thread) + "-" + std::to_string(i);
}

enum class Tiers { MemoryOnly, MemoryAndRocksDb, PrefetchingOverRocksDb };

class CacheConcurrency : public ::testing::TestWithParam<Tiers> {};

TEST_P(CacheConcurrency, MixedOperationsMatchAModel) {
  const bool durable = GetParam() != Tiers::MemoryOnly;
  TempDir dir;
  CacheOptions options;
  options.dim = kDim;
  if (durable) {
    options.durable = RocksDbOptions{};
    options.durable->path = dir.sub("db");
  }
  if (GetParam() == Tiers::PrefetchingOverRocksDb) {
    // A memory tier far smaller than the 600 keys, so reads keep missing it and the prefetch
    // loader keeps admitting keys while their owners write them: a load must never undo a write.
    options.max_entries = 64;
    options.enable_prefetching = true;
    options.prefetch_cache_size = 200;
  }
  EmbeddingCache cache(options);
  // Highest version ever written per key (readers accept any version up to it).
  std::vector<std::atomic<std::uint32_t>> max_version(kThreads * kKeysPerThread);
  // Every version written per key (search hits are checked against these).
  std::vector<std::vector<std::uint32_t>> written(kThreads * kKeysPerThread);
  std::vector<std::mutex> written_mutex(kThreads * kKeysPerThread);
  std::atomic<std::size_t> failures{0};
  const std::uint64_t seed = test_seed();
  const int ops = durable ? 3000 : 20000;

  auto worker = [&](std::size_t t) {
    std::mt19937_64 rng(seed + t);
    std::vector<std::uint32_t> mine(kKeysPerThread, 0);  // 0 = absent
    std::vector<float> out(kDim);
    const auto fail = [&](const std::string& what) {
      if (failures.fetch_add(1) < 10) ADD_FAILURE() << "thread " << t << ": " << what;
    };
    const auto valid_version = [&](const std::string& key, std::size_t index, const float* row) {
      const auto version = static_cast<std::uint32_t>(row[0]);
      if (version == 0 || version > max_version[index].load()) return false;
      const auto expected = versioned(key, version);
      return row_equals(row, expected);
    };
    for (int op = 0; op < ops; ++op) {
      const std::size_t i = rng() % kKeysPerThread;
      const std::string key = key_of(t, i);
      switch (rng() % 10) {
        case 0:
        case 1:
        case 2: {  // put own key
          const std::uint32_t version = mine[i] = static_cast<std::uint32_t>(op + 1);
          max_version[t * kKeysPerThread + i].store(
              std::max(max_version[t * kKeysPerThread + i].load(), version));
          {
            std::lock_guard lock(written_mutex[t * kKeysPerThread + i]);
            written[t * kKeysPerThread + i].push_back(version);
          }
          cache.put(key, versioned(key, version));
          break;
        }
        case 3: {  // remove own key
          if (cache.remove(key) != (mine[i] != 0))
            fail("remove(" + key + ") disagrees with the model");
          mine[i] = 0;
          break;
        }
        case 4:
        case 5: {  // get own key: exactly the model
          const bool hit = cache.get(key, out);
          if (hit != (mine[i] != 0))
            fail("get(" + key + ") hit=" + std::to_string(hit));
          else if (hit && !row_equals(out.data(), versioned(key, mine[i])))
            fail("get(" + key + ") returned another version");
          break;
        }
        case 6:
        case 7: {  // batch get of anyone's keys: whole, written versions
          std::vector<std::string> keys;
          std::vector<std::size_t> index;
          for (int n = 0; n < 32; ++n) {
            const std::size_t owner = rng() % kThreads, j = rng() % kKeysPerThread;
            keys.push_back(key_of(owner, j));
            index.push_back(owner * kKeysPerThread + j);
          }
          Matrix rows(keys.size(), kDim);
          const auto mask = cache.get_batch(keys, rows.mutable_view());
          for (std::size_t n = 0; n < keys.size(); ++n) {
            if (mask[n] && !valid_version(keys[n], index[n], rows.row(n)))
              fail("torn or unknown value for " + keys[n]);
          }
          break;
        }
        default: {  // search: each hit scores like some version of its key
          std::vector<float> query = vector_for("query" + std::to_string(op), 1, kDim);
          const auto hits = cache.search(MatrixView(query.data(), 1, kDim), 5, Metric::Dot);
          for (const auto& hit : hits[0]) {
            const auto dash = hit.key.find('-');
            const std::size_t owner = std::stoul(hit.key.substr(1, dash - 1));
            const std::size_t j = std::stoul(hit.key.substr(dash + 1));
            std::vector<std::uint32_t> versions;
            {
              std::lock_guard lock(written_mutex[owner * kKeysPerThread + j]);
              versions = written[owner * kKeysPerThread + j];
            }
            bool matched = false;
            for (const std::uint32_t v : versions) {
              if (matched) break;
              const auto candidate = versioned(hit.key, v);
              double dot = 0, bound = 0;
              for (std::size_t c = 0; c < kDim; ++c) {
                dot += double(query[c]) * candidate[c];
                bound += std::fabs(double(query[c]) * candidate[c]);
              }
              matched = std::fabs(dot - hit.score) <= 1e-5 * bound + 1e-6;
            }
            if (!matched) fail("search hit " + hit.key + " matches no written version");
          }
          break;
        }
      }
    }
    // The final state of my keys is exactly the model.
    for (std::size_t i = 0; i < kKeysPerThread; ++i) {
      const std::string key = key_of(t, i);
      const bool hit = cache.get(key, out);
      if (hit != (mine[i] != 0) || (hit && !row_equals(out.data(), versioned(key, mine[i]))))
        fail("final state of " + key);
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0u);
  EXPECT_EQ(cache.stats().corrupt_reads, 0u);
  if (GetParam() == Tiers::PrefetchingOverRocksDb) {
    // Not vacuous: the loader did admit keys and gets were served by them.
    EXPECT_GT(cache.stats().prefetch_loads, 0u);
    EXPECT_GT(cache.stats().prefetch_hits, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Tiers, CacheConcurrency,
                         ::testing::Values(Tiers::MemoryOnly, Tiers::MemoryAndRocksDb,
                                           Tiers::PrefetchingOverRocksDb),
                         [](const auto& param_info) {
                           switch (param_info.param) {
                             case Tiers::MemoryOnly:
                               return "MemoryOnly";
                             case Tiers::MemoryAndRocksDb:
                               return "MemoryAndRocksDb";
                             case Tiers::PrefetchingOverRocksDb:
                               return "PrefetchingOverRocksDb";
                           }
                           return "Unknown";
                         });

}  // namespace
}  // namespace hetcache::test
