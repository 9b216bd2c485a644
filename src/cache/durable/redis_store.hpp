// Private: the shared durable store, a Redis server reached through one pipelined connection, or a
// Redis Cluster through one connection per master (RedisOptions::cluster).
//
// Keys: options.key_prefix + ["{tag}"] + key (see RedisOptions::cluster_hash_tags). Values: the
// value_format bytes, written with SET .. PX so Redis drops them when they expire. Batches are
// pipelined: reads as MGETs of chunk_keys keys, writes as groups of chunk_keys SETs; with hash
// tags each MGET / group holds one tag only.
#pragma once

#include <hetcache/cache.hpp>

#include <memory>
#include <string>
#include <vector>

#include "cache/durable/durable_store.hpp"
#include "cache/durable/redis_cluster.hpp"
#include "cache/durable/redis_connection.hpp"

namespace hetcache::cache {

class RedisStore final : public DurableStore {
 public:
  // Throws Error(InvalidArgument) for bad options; does not connect yet (a Redis that is down at
  // start fails the first call, or is served memory-only when degrading). Values are written as
  // `value_type` (value_format.hpp); values of every type are read.
  RedisStore(const RedisOptions& options, std::size_t dim, StorageType value_type);
  ~RedisStore() override;

  const std::string& name() const noexcept override { return name_; }
  // The key as stored in Redis.
  std::string redis_key(std::string_view key) const;

  void get_batch(std::span<const std::string_view> keys, float* out, std::size_t stride,
                 std::int64_t now_ms, BatchRead& read) override;
  Future<void> get_batch_async(Resources& resources, std::span<const std::string_view> keys,
                               float* out, std::size_t stride, std::int64_t now_ms,
                               BatchRead& read) override;
  // A cluster follows redirections by waiting and sending again, on the I/O pool.
  bool reads_block() const noexcept override { return cluster_ != nullptr; }
  // One connection, one server thread: chunks of at most chunk_keys, all pipelined. (Fewer,
  // bigger chunks -- 4 fibers instead of 16 for 1000 keys -- measured no different, 2026-11-24.)
  std::size_t read_chunk_keys(std::size_t optimal_batch_size) const override {
    return std::min(optimal_batch_size, options_.chunk_keys);
  }
  // Pipelined, not atomic: after a failure some keys may be written (each value whole).
  void put_batch(std::span<const std::string_view> keys, const float* rows, std::size_t stride,
                 std::int64_t expiry_ms) override;
  bool remove(std::string_view key) override;
  // Deletes every key under the prefix (SCAN + UNLINK).
  void clear() override;
  void compact() override {}  // Redis expires keys itself
  std::string probe() override;
  // The shortest of the standalone connections' (a cluster's connections are not measured: 0).
  double round_trip_us() const noexcept override;

 private:
  Future<void> start_read(std::span<const std::string_view> keys, float* out, std::size_t stride,
                          std::int64_t now_ms, BatchRead& read);
  // The key's hash tag in [0, cluster_hash_tags) (only with hash tags on).
  unsigned tag_of(std::string_view key) const;
  // Index groups of at most chunk_keys keys, each within one hash tag.
  std::vector<std::vector<std::size_t>> chunks_of(std::span<const std::string_view> keys) const;

  RedisOptions options_;
  std::size_t dim_;
  StorageType value_type_;
  std::string name_;
  // The connection with the fewest requests outstanding (a standalone server).
  RedisConnection& connection() const;

  // A standalone server (or a cluster proxy): RedisOptions::connections of them.
  std::vector<std::unique_ptr<RedisConnection>> connections_;
  std::unique_ptr<RedisCluster> cluster_;  // RedisOptions::cluster: every master
};

}  // namespace hetcache::cache
