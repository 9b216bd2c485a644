// The Redis tier against a real three-master Redis Cluster on loopback (RedisOptions::cluster):
// hash slots computed as the server computes them, every pipeline on the master of its slot
// (a mixed-slot pipeline is refused by the cluster with CROSSSLOT, so a passing run proves the
// routing), keys spread over every master, MOVED followed after a live reshard, clear() on every
// master.
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <gtest/gtest.h>

#include "cache/cache_test_util.hpp"
#include "cache/durable/redis_cluster.hpp"
#include "support/redis_cluster.hpp"

namespace hetcache {
namespace {

using test::make_keys;
using test::matrix_for;
using test::row_equals;
using test::vector_for;

constexpr std::size_t kDim = 16;

CacheOptions cluster_options(int port) {
  CacheOptions options;
  options.dim = kDim;
  RedisOptions redis;
  redis.port = port;
  redis.cluster = true;
  redis.cluster_hash_tags = 64;
  redis.chunk_keys = 40;
  options.redis = redis;
  options.log = [](std::string_view) {};
  return options;
}

void expect_all(EmbeddingCache& cache, const std::vector<std::string>& keys,
                std::uint64_t version) {
  test::expect_all_stored(cache, keys, version, kDim);
}

TEST(RedisCluster, KeySlotsAreTheServersSlots) {
  EXPECT_EQ(cache::key_slot("123456789"), 0x31C3u % 16384);  // CRC16-XMODEM's check value
  testing::RedisClusterProcesses cluster;
  for (const std::string key :
       {"a", "hetcache:{3f}doc-17", "x{}y", "{user1000}.following", "{", "hetcache:{0}", "k{a}{b}"})
    EXPECT_EQ(std::to_string(cache::key_slot(key)), cluster.ask(0, "CLUSTER KEYSLOT " + key))
        << key;
}

TEST(RedisCluster, BatchesReachEveryMasterAndReadBack) {
  testing::RedisClusterProcesses cluster;
  EmbeddingCache writer(cluster_options(cluster.port(1)));
  const auto keys = make_keys("doc", 3000);
  writer.put_batch(keys, matrix_for(keys, 1, kDim).view());
  long long total = 0;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    EXPECT_GT(cluster.keys_on(i), 300) << "master " << i;  // 64 tags over 3 masters
    total += cluster.keys_on(i);
  }
  EXPECT_EQ(total, 3000);
  EmbeddingCache reader(cluster_options(cluster.port(2)));  // another entry node, its own memory
  expect_all(reader, keys, 1);
  Matrix out(keys.size(), kDim);
  EXPECT_EQ(reader.get_batch_async(keys, out.mutable_view()).get(),
            std::vector<std::uint8_t>(keys.size(), 1));
  EXPECT_TRUE(reader.remove("doc17"));
  EXPECT_FALSE(reader.get("doc17").has_value());
  EXPECT_EQ(reader.health().status, HealthStatus::Healthy);
  reader.clear();
  for (std::size_t i = 0; i < cluster.size(); ++i) EXPECT_EQ(cluster.keys_on(i), 0) << i;
}

// Slots move while caches hold the old map: their reads and writes follow MOVED to the new
// master (the reader's memory tier is empty, so every read goes to the cluster).
TEST(RedisCluster, AReshardIsFollowed) {
  testing::RedisClusterProcesses cluster;
  EmbeddingCache writer(cluster_options(cluster.port(0)));
  const auto keys = make_keys("moving", 2000);
  writer.put_batch(keys, matrix_for(keys, 1, kDim).view());
  EmbeddingCache reader(cluster_options(cluster.port(0)));
  EXPECT_TRUE(reader.get(keys[0]).has_value());  // the reader has read the slot map
  const long long before = cluster.keys_on(0);
  cluster.reshard(0, 1, 3000);  // most of master 0's 5461 slots, with their keys
  EXPECT_LT(cluster.keys_on(0), before);
  std::vector<std::string> rest(keys.begin() + 1, keys.end());  // not in the reader's memory
  expect_all(reader, rest, 1);
  writer.put_batch(keys, matrix_for(keys, 2, kDim).view());
  EmbeddingCache after(cluster_options(cluster.port(2)));
  expect_all(after, keys, 2);
  EXPECT_EQ(writer.stats().durable_errors + reader.stats().durable_errors, 0u);
}

TEST(RedisCluster, OptionsAClusterCannotTake) {
  CacheOptions options = cluster_options(6379);
  options.redis->cluster_hash_tags = 0;
  test::expect_error(ErrorCode::InvalidArgument, "RedisOptions.cluster needs cluster_hash_tags > 0",
                     [&] { EmbeddingCache{options}; });
  options = cluster_options(6379);
  options.redis->db = 2;
  test::expect_error(ErrorCode::InvalidArgument, "RedisOptions.db must be 0 with cluster",
                     [&] { EmbeddingCache{options}; });
  // Nothing listening: the slot map cannot be read, a clear error.
  options = cluster_options(testing::RedisServerProcess::free_port());
  EmbeddingCache down(options);
  test::expect_error(ErrorCode::StoreUnavailable, "cannot read the slot map",
                     [&] { down.get("x"); });
}

}  // namespace
}  // namespace hetcache
