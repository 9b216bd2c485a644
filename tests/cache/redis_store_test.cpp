// The Redis tier against a real redis-server on a free loopback port: round trips through the
// cache, the value format and key naming in Redis itself, TTLs, corrupt values, a server that is
// down, paused (timeouts) or killed in the middle of batches, reconnecting, degrading to memory,
// and the one-fiber-thread no-deadlock check through hiredis' event loop.
#include <hetcache/cache.hpp>
#include <hetcache/compact.hpp>
#include <hetcache/error.hpp>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "cache/cache_test_util.hpp"
#include "cache/durable/redis_store.hpp"
#include "support/redis_server.hpp"

namespace hetcache {
namespace {

using test::make_keys;
using test::matrix_for;
using test::row_equals;
using test::vector_for;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kDim = 32;

CacheOptions redis_options(int port, std::shared_ptr<Resources> runtime = nullptr) {
  CacheOptions options;
  options.dim = kDim;
  RedisOptions redis;
  redis.port = port;
  redis.connect_timeout = std::chrono::milliseconds(500);
  redis.command_timeout = std::chrono::milliseconds(800);
  redis.chunk_keys = 50;
  options.redis = redis;
  options.resources = runtime ? std::move(runtime)
                              : std::make_shared<Resources>(ResourcesOptions{.fiber_threads = 2});
  options.log = [](std::string_view) {};
  return options;
}

// A raw hiredis client, to look at what the store wrote.
struct RawRedis {
  explicit RawRedis(int port) : c(redisConnect("127.0.0.1", port)) {}
  ~RawRedis() { redisFree(c); }
  redisReply* command(const std::vector<std::string>& args) {
    return testing::redis_command(c, args);
  }
  redisContext* c;
};

// Two caches on one Redis: what one machine writes, another reads (sync and async).
TEST(RedisTier, OneCacheWritesAnotherReads) {
  testing::RedisServerProcess server;
  EmbeddingCache writer(redis_options(server.port()));
  EmbeddingCache reader(redis_options(server.port()));
  EXPECT_TRUE(writer.has_durable_store());
  const auto keys = make_keys("r", 500);
  writer.put_batch(keys, matrix_for(keys, 2, kDim));
  auto asked = make_keys("r", 300, 400);  // 100 present, 200 absent
  Matrix out(asked.size(), kDim);
  const auto mask = reader.get_batch(asked, out.mutable_view());
  Matrix async_out(asked.size(), kDim);
  EmbeddingCache reader2(redis_options(server.port()));
  const auto async_mask = reader2.get_batch_async(asked, async_out.mutable_view()).get();
  for (std::size_t i = 0; i < asked.size(); ++i) {
    ASSERT_EQ(mask[i], i < 100 ? 1 : 0) << asked[i];
    ASSERT_EQ(async_mask[i], mask[i]);
    if (mask[i]) {
      ASSERT_TRUE(row_equals(out.row(i), vector_for(asked[i], 2, kDim)));
      ASSERT_TRUE(row_equals(async_out.row(i), vector_for(asked[i], 2, kDim)));
    }
  }
  EXPECT_EQ(reader.stats().durable_hits, 100u);
  EXPECT_EQ(reader2.stats().durable_hits, 100u);
  // put_batch_async, remove and clear reach Redis too.
  const auto more = make_keys("s", 120);
  reader.put_batch_async(more, matrix_for(more, 4, kDim)).get();
  EXPECT_TRUE(writer.get(more[77]).has_value());
  EXPECT_TRUE(writer.remove(keys[3]));
  EXPECT_FALSE(reader.get(keys[3]).has_value());
  EXPECT_FALSE(reader.remove("never-written"));
  writer.clear();
  EmbeddingCache fresh(redis_options(server.port()));
  EXPECT_FALSE(fresh.get(keys[10]).has_value());
  EXPECT_FALSE(fresh.get(more[10]).has_value());
  EXPECT_EQ(fresh.health().status, HealthStatus::Healthy);
}

TEST(RedisTier, StoresTheBinaryFormatWithExpiryUnderPrefixedKeys) {
  testing::RedisServerProcess server;
  EmbeddingCache cache(redis_options(server.port()));
  const std::vector<float> v = vector_for("doc-1", 0, kDim);
  cache.put("doc-1", v, std::chrono::milliseconds(60'000));
  cache.put("doc-2", v);
  RawRedis raw(server.port());
  redisReply* value = raw.command({"GET", "hetcache:doc-1"});
  ASSERT_EQ(value->type, REDIS_REPLY_STRING);
  EXPECT_EQ(value->len, 32 + kDim * sizeof(float));
  EXPECT_EQ(std::string(value->str, 4), "HCV1");
  freeReplyObject(value);
  redisReply* ttl = raw.command({"PTTL", "hetcache:doc-1"});
  EXPECT_GT(ttl->integer, 50'000);
  EXPECT_LE(ttl->integer, 60'000);
  freeReplyObject(ttl);
  redisReply* no_ttl = raw.command({"PTTL", "hetcache:doc-2"});
  EXPECT_EQ(no_ttl->integer, -1);  // never expires
  freeReplyObject(no_ttl);
}

// durable_storage: each value goes over the wire and into Redis in the type's bytes, and a cache
// that writes f32 reads it back rounded, as the writer's own memory store holds it.
TEST(RedisTier, WritesTheDurableStorageType) {
  testing::RedisServerProcess server;
  RawRedis raw(server.port());
  for (const StorageType type : {StorageType::F16, StorageType::Bf16, StorageType::I8}) {
    CacheOptions options = redis_options(server.port());
    options.durable_storage = type;
    EmbeddingCache writer(options);
    const auto keys = make_keys(std::string(to_string(type)) + "-", 40);
    writer.put_batch(keys, matrix_for(keys, 6, kDim));
    redisReply* value = raw.command({"GET", "hetcache:" + keys[7]});
    ASSERT_EQ(value->type, REDIS_REPLY_STRING);
    EXPECT_EQ(value->len, 32 + kDim * element_bytes(type)) << to_string(type);
    freeReplyObject(value);
    Matrix written(keys.size(), kDim), read(keys.size(), kDim);
    writer.get_batch(keys, written.mutable_view());  // memory hits: the rounded rows
    EmbeddingCache reader(redis_options(server.port()));
    const auto found = reader.get_batch(keys, read.mutable_view());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      ASSERT_TRUE(found[i]) << keys[i];
      const std::vector<float> want(written.row(i), written.row(i) + kDim);
      ASSERT_TRUE(row_equals(read.row(i), want)) << keys[i];
      ASSERT_FALSE(row_equals(read.row(i), vector_for(keys[i], 6, kDim))) << keys[i];
    }
  }
}

// RedisOptions::db is SELECTed: values land in that database only, and a cache on another
// database does not see them.
TEST(RedisTier, TheDbOptionSelectsTheDatabase) {
  testing::RedisServerProcess server;
  CacheOptions on3 = redis_options(server.port());
  on3.redis->db = 3;
  EmbeddingCache cache(on3);
  cache.put("selected", vector_for("selected", 0, kDim));
  RawRedis raw(server.port());
  const auto exists = [&](const std::string& db) {
    freeReplyObject(raw.command({"SELECT", db}));
    redisReply* r = raw.command({"EXISTS", "hetcache:selected"});
    const long long n = r != nullptr && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r) freeReplyObject(r);
    return n;
  };
  EXPECT_EQ(exists("3"), 1);
  EXPECT_EQ(exists("0"), 0);
  EmbeddingCache on0(redis_options(server.port()));
  EXPECT_FALSE(on0.get("selected").has_value());
  EmbeddingCache again(on3);
  EXPECT_TRUE(again.get("selected").has_value());
}

// RedisOptions::password is sent with AUTH: with it the cache works; without it the server's
// refusal is a StoreUnavailable error that says so.
TEST(RedisTier, ThePasswordIsSentWithAuth) {
  testing::RedisServerProcess server;
  {
    RawRedis raw(server.port());
    freeReplyObject(raw.command({"CONFIG", "SET", "requirepass", "s3cret"}));
  }
  CacheOptions with = redis_options(server.port());
  with.redis->password = "s3cret";
  EmbeddingCache cache(with);
  cache.put("guarded", vector_for("guarded", 0, kDim));
  EXPECT_TRUE(EmbeddingCache(with).get("guarded").has_value());
  EmbeddingCache without(redis_options(server.port()));
  test::expect_error(ErrorCode::StoreUnavailable, "NOAUTH", [&] { without.get("guarded"); });
  CacheOptions wrong = with;
  wrong.redis->password = "nope";
  EmbeddingCache refused(wrong);
  test::expect_error(ErrorCode::StoreUnavailable,
                     "Redis 127.0.0.1:", [&] { refused.get("guarded"); });
}

TEST(RedisTier, ClusterHashTagsKeepEachPipelineInOneSlot) {
  testing::RedisServerProcess server;
  CacheOptions options = redis_options(server.port());
  options.redis->cluster_hash_tags = 16;
  options.redis->key_prefix = "emb:";
  EmbeddingCache cache(options);
  const auto keys = make_keys("t", 300);
  cache.put_batch(keys, matrix_for(keys, 1, kDim));
  cache::RedisStore store(*options.redis, kDim, StorageType::F32);
  const std::string stored = store.redis_key("t7");
  ASSERT_EQ(stored.rfind("emb:{", 0), 0u) << stored;
  EXPECT_EQ(stored.substr(stored.find('}') + 1), "t7");
  RawRedis raw(server.port());
  redisReply* exists = raw.command({"EXISTS", stored});
  EXPECT_EQ(exists->integer, 1);
  freeReplyObject(exists);
  EmbeddingCache other(options);
  Matrix out(keys.size(), kDim);
  const auto mask = other.get_batch(keys, out.mutable_view());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(mask[i], 1);
    ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], 1, kDim)));
  }
}

TEST(RedisTier, CorruptValuesAreMissesAndCounted) {
  testing::RedisServerProcess server;
  RawRedis raw(server.port());
  freeReplyObject(raw.command({"SET", "hetcache:bad", "not a vector"}));
  EmbeddingCache cache(redis_options(server.port()));
  EXPECT_FALSE(cache.get("bad").has_value());
  EXPECT_EQ(cache.stats().corrupt_reads, 1u);
  EXPECT_EQ(cache.health().status, HealthStatus::Degraded);
}

TEST(RedisTier, RejectsBadOptions) {
  CacheOptions options = redis_options(6379);
  options.redis->key_prefix = "a{b}";
  test::expect_error(ErrorCode::InvalidArgument, "RedisOptions.key_prefix must not contain '{'",
                     [&] { EmbeddingCache{options}; });
  options = redis_options(0);
  test::expect_error(ErrorCode::InvalidArgument, "RedisOptions.port must be in 1..65535, got 0",
                     [&] { EmbeddingCache{options}; });
  options = redis_options(6379);
  options.redis->chunk_keys = 0;
  test::expect_error(ErrorCode::InvalidArgument, "RedisOptions.chunk_keys must be from 1 to",
                     [&] { EmbeddingCache{options}; });
  options.redis->chunk_keys = (std::size_t{1} << 20) + 1;
  test::expect_error(ErrorCode::InvalidArgument, "got 1048577", [&] { EmbeddingCache{options}; });
  options = redis_options(6379);
  options.redis->host = "";
  test::expect_error(ErrorCode::InvalidArgument, "RedisOptions.host is empty",
                     [&] { EmbeddingCache{options}; });
  options = redis_options(6379);
  options.redis->db = -1;
  test::expect_error(ErrorCode::InvalidArgument, "RedisOptions.db must be >= 0, got -1",
                     [&] { EmbeddingCache{options}; });
  options = redis_options(6379);
  options.redis->command_timeout = std::chrono::milliseconds(0);
  test::expect_error(ErrorCode::InvalidArgument, "RedisOptions timeouts must be positive",
                     [&] { EmbeddingCache{options}; });
  options = redis_options(6379);
  options.durable = RocksDbOptions{.path = "/tmp/unused"};
  test::expect_error(ErrorCode::InvalidArgument, "set one durable store",
                     [&] { EmbeddingCache{options}; });
}

// Down, then back: calls fail fast with a clear error, and the same cache works again once Redis
// answers (it reconnects by itself).
TEST(RedisTier, DownGivesAClearErrorAndItReconnects) {
  testing::RedisServerProcess server;
  EmbeddingCache cache(redis_options(server.port()));
  cache.put("before", vector_for("before", 0, kDim));
  server.kill();
  const auto started = Clock::now();
  try {
    cache.put("during", vector_for("during", 0, kDim));
    FAIL() << "a put to a dead Redis succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::StoreUnavailable);
    EXPECT_NE(std::string(e.what()).find("Redis 127.0.0.1:" + std::to_string(server.port())),
              std::string::npos)
        << e.what();
  }
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(3));
  EXPECT_EQ(cache.health().status, HealthStatus::Unhealthy);
  EXPECT_GT(cache.stats().durable_errors, 0u);
  server.start();
  cache.put("after", vector_for("after", 0, kDim));
  EmbeddingCache other(redis_options(server.port()));
  EXPECT_TRUE(other.get("after").has_value());
  EXPECT_EQ(cache.health().status, HealthStatus::Healthy);
}

// A server that accepts but never answers (SIGSTOP): the call ends at command_timeout.
TEST(RedisTier, ASilentServerTimesOut) {
  testing::RedisServerProcess server;
  EmbeddingCache cache(redis_options(server.port()));
  cache.put("x", vector_for("x", 0, kDim));  // connected
  server.pause();
  const auto started = Clock::now();
  try {
    EmbeddingCache reader(redis_options(server.port()));
    reader.get("x");
    FAIL() << "read from a paused Redis returned";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::StoreUnavailable) << e.what();
  }
  try {
    cache.put("y", vector_for("y", 0, kDim));
    FAIL() << "write to a paused Redis returned";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no reply within 800 ms"), std::string::npos) << e.what();
  }
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(5));
  server.resume();
  cache.put("z", vector_for("z", 0, kDim));
  EXPECT_TRUE(cache.get("z").has_value());
}

// Killed in the middle of batches: every call either completes with exact data or fails with
// StoreUnavailable; none hangs; nothing wrong is ever returned; it works again after a restart.
TEST(RedisTier, KilledMidBatchNeverHangsOrReturnsWrongData) {
  testing::RedisServerProcess server;
  CacheOptions options = redis_options(server.port());
  EmbeddingCache cache(options);
  const auto keys = make_keys("k", 4000);
  cache.put_batch(keys, matrix_for(keys, 5, kDim));
  std::atomic<bool> stop{false};
  std::atomic<int> completed{0}, failed{0};
  std::thread reader([&] {
    while (!stop) {
      EmbeddingCache remote(options);  // an empty memory tier: every read goes to Redis
      Matrix out(keys.size(), kDim);
      auto future = remote.get_batch_async(keys, out.mutable_view());
      ASSERT_TRUE(future.wait_for(std::chrono::seconds(10))) << "a batch hung";
      try {
        const auto mask = future.get();
        for (std::size_t i = 0; i < keys.size(); i += 13) {
          if (mask[i]) {
            ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], 5, kDim)));
          }
        }
        ++completed;
      } catch (const Error& e) {
        ASSERT_EQ(e.code(), ErrorCode::StoreUnavailable) << e.what();
        ++failed;
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server.kill();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server.start();  // empty: --save ""
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  reader.join();
  EXPECT_GT(completed.load(), 0);
  EXPECT_GT(failed.load(), 0);
  cache.put_batch(keys, matrix_for(keys, 6, kDim));
  EmbeddingCache after(options);
  Matrix out(keys.size(), kDim);
  const auto mask = after.get_batch(keys, out.mutable_view());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(mask[i], 1);
    ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], 6, kDim)));
  }
}

// The server killed while this very cache has a batch in flight: that batch fails with
// StoreUnavailable (never hangs, never reports success), and the same cache object -- no restart
// of the process, no new cache -- writes and reads again once the server is back.
TEST(RedisTier, ABatchInFlightWhenTheServerDiesFailsAndTheSameCacheRecovers) {
  testing::RedisServerProcess server;
  EmbeddingCache cache(redis_options(server.port()));
  const auto keys = make_keys("inflight", 20000);
  const Matrix values = matrix_for(keys, 1, kDim);
  std::atomic<int> failures{0}, successes{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop) {
      try {
        cache.put_batch(keys, values.view());
        ++successes;
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::StoreUnavailable) << e.what();
        ++failures;
      }
    }
  });
  while (successes == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server.kill();  // the writer is, with near certainty, inside a put_batch pipeline
  while (failures == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  writer.join();
  server.start();  // empty: --save ""
  cache.put_batch(keys, matrix_for(keys, 2, kDim).view());
  Matrix out(keys.size(), kDim);
  EmbeddingCache reader(redis_options(server.port()));
  const auto mask = reader.get_batch(keys, out.mutable_view());
  for (std::size_t i = 0; i < keys.size(); i += 7) {
    ASSERT_EQ(mask[i], 1) << keys[i];
    ASSERT_TRUE(row_equals(out.row(i), vector_for(keys[i], 2, kDim)));
  }
  EXPECT_TRUE(cache.get(keys[5]).has_value());
  EXPECT_EQ(cache.health().status, HealthStatus::Healthy);
}

TEST(RedisTier, DegradesToMemoryWhenConfigured) {
  testing::RedisServerProcess server;
  CacheOptions options = redis_options(server.port());
  options.redis->degrade_to_memory = true;
  EmbeddingCache cache(options);
  cache.put("kept", vector_for("kept", 0, kDim));
  server.kill();
  cache.put("memory-only", vector_for("memory-only", 0, kDim));  // no throw
  EXPECT_TRUE(cache.get("kept").has_value());
  EXPECT_TRUE(cache.get("memory-only").has_value());
  EXPECT_FALSE(cache.get("absent").has_value());  // a miss, not an error
  Matrix out(2, kDim);
  const std::vector<std::string> both = {"kept", "absent"};
  EXPECT_EQ(cache.get_batch_async(both, out.mutable_view()).get(),
            (std::vector<std::uint8_t>{1, 0}));
  const CacheHealth health = cache.health();
  EXPECT_EQ(health.status, HealthStatus::Unhealthy);
  ASSERT_FALSE(health.reasons.empty());
  EXPECT_NE(health.reasons.back().find("serving the memory store only"), std::string::npos);
  EXPECT_GE(cache.stats().degraded_calls, 3u);
  server.start();
  cache.put("back", vector_for("back", 0, kDim));
  EmbeddingCache other(options);
  EXPECT_TRUE(other.get("back").has_value());
}

// The no-blocking proof through hiredis: 64 fiber callers x 10k keys on ONE fiber thread, every
// read answered by the Redis event loop.
TEST(RedisTier, SixtyFourCallersOnOneFiberThreadNeverDeadlock) {
  testing::RedisServerProcess server;
  auto runtime = std::make_shared<Resources>(ResourcesOptions{.fiber_threads = 1, .io_threads = 1});
  constexpr std::size_t kKeys = 10000, kCallers = 64, kSmallDim = 8;
  CacheOptions options = redis_options(server.port(), runtime);
  options.dim = kSmallDim;
  options.redis->chunk_keys = 256;
  options.redis->command_timeout = std::chrono::seconds(30);
#if defined(__SANITIZE_THREAD__)
  // TSan tracks every live fiber like a thread and stops at 8128: bigger chunks, same property.
  options.scheduler.optimal_batch_size = 256;
#endif
  const auto keys = make_keys("f", kKeys);
  EmbeddingCache(options).put_batch(keys, matrix_for(keys, 8, kSmallDim));
  options.max_bytes = 64 << 10;  // a small memory tier: most reads go to Redis
  EmbeddingCache cache(options);
  std::vector<Matrix> outs;
  for (std::size_t c = 0; c < kCallers; ++c) outs.emplace_back(kKeys, kSmallDim);
  test::read_from_fiber_callers(*runtime, cache, keys, outs, std::chrono::seconds(240));
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  for (std::size_t i = 0; i < kKeys; i += 101) {
    ASSERT_TRUE(row_equals(outs[63].row(i), vector_for(keys[i], 8, kSmallDim)));
  }
}

}  // namespace
}  // namespace hetcache
