// src/cache/durable: the durable stores under the memory store -- RocksDB (rocksdb_*.cpp), Redis
// standalone or Cluster (redis_*.cpp) -- and their one value format (value_format.cpp). They block
// or answer on their own event loop; the cache decides where they are called from.
//
// Private: what the cache needs from a durable store (RocksDbStore, RedisStore).
//
// Values use one binary format (value_format.hpp) in every store. Every failure to reach the
// store is an Error(StoreUnavailable) whose message names the store; a value that fails its
// checks is reported per key as Corrupt, never returned.
#pragma once

#include <hetcache/compact.hpp>
#include <hetcache/future.hpp>
#include <hetcache/matrix.hpp>
#include <hetcache/resources.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hetcache::cache {

// The rows as values stored as `type` read back (decode_value of encode_value): what every read of
// them returns.
Matrix round_as_stored(StorageType type, MatrixView rows);

class DurableStore {
 public:
  enum class ReadResult : std::uint8_t { Found, Missing, Expired, Corrupt };
  struct BatchRead {
    std::vector<ReadResult> results;
    std::vector<std::int64_t> expiry_ms;    // for Found
    std::vector<std::string_view> reasons;  // for Corrupt (static text)

    void reset(std::size_t n);
    // Decodes a stored value of key i into out (row of dim floats) and records what it was.
    void classify(std::size_t i, std::string_view key, std::string_view stored, std::size_t dim,
                  float* out, std::int64_t now_ms);
  };

  virtual ~DurableStore() = default;

  // "RocksDB '/path'" or "Redis 127.0.0.1:6379": how messages name this store.
  virtual const std::string& name() const noexcept = 0;

  // Row i of the output (out + i * stride) receives keys[i] when Found. Blocks the calling thread.
  virtual void get_batch(std::span<const std::string_view> keys, float* out, std::size_t stride,
                         std::int64_t now_ms, BatchRead& read) = 0;
  // The same without blocking a fiber: keys, out and read must stay valid until the future is
  // ready. By default the blocking call runs on the resources' I/O pool.
  virtual Future<void> get_batch_async(Resources& resources, std::span<const std::string_view> keys,
                                       float* out, std::size_t stride, std::int64_t now_ms,
                                       BatchRead& read);
  // Whether get_batch_async runs the blocking call on the I/O pool (true by default); false for a
  // store that answers on its own event loop.
  virtual bool reads_block() const noexcept { return true; }
  // Keys per concurrent async read (the cache's optimal_batch_size by default). A store that
  // pipelines on one connection prefers fewer, larger reads.
  virtual std::size_t read_chunk_keys(std::size_t optimal_batch_size) const {
    return optimal_batch_size;
  }
  // The store's round trip across its link, in us, as last measured (what a read waits for
  // besides its own work); 0 for a local store, or before anything was measured.
  virtual double round_trip_us() const noexcept { return 0.0; }
  virtual void put_batch(std::span<const std::string_view> keys, const float* rows,
                         std::size_t stride, std::int64_t expiry_ms) = 0;

  // The Cpu tier as a store sees it: `threads` run at once; run(n, chunk, body) calls
  // body(first, count) over [0, n) in chunks of `chunk`, in parallel, and returns when all are done
  // (rethrowing the first exception).
  struct CpuTier {
    std::size_t threads = 1;
    std::function<void(std::size_t n, std::size_t chunk,
                       const std::function<void(std::size_t first, std::size_t count)>& body)>
        run;
  };
  // The fewest rows put_bulk writes as files; 0: the store has no bulk path.
  virtual std::size_t bulk_rows() const { return 0; }
  // A large write as whole files added in one step, all or nothing (RocksDB: sorted table files,
  // IngestExternalFiles); keys must be distinct. Without a bulk path: put_batch.
  virtual void put_bulk(std::span<const std::string_view> keys, const float* rows,
                        std::size_t stride, std::int64_t expiry_ms, const CpuTier& /*cpu*/) {
    put_batch(keys, rows, stride, expiry_ms);
  }
  // True when the key had a value.
  virtual bool remove(std::string_view key) = 0;
  virtual void clear() = 0;
  // Drops expired values now where the store keeps them (RocksDB); nothing to do elsewhere.
  virtual void compact() = 0;
  // Empty when the store answers, else why it does not.
  virtual std::string probe() = 0;
  // Visits every live value in key order, up to batch_rows at a time (keys, their row ids -- -1
  // where the store keeps none -- then their rows of dim floats, packed); expired and corrupt
  // values are skipped and counted. A store that cannot list its keys throws Error(Unsupported).
  using ScanVisit =
      std::function<void(std::span<const std::string> keys, std::span<const std::int64_t> ids,
                         const float* rows, std::size_t count)>;
  virtual void scan(std::size_t batch_rows, std::int64_t now_ms, const ScanVisit& visit,
                    std::uint64_t& expired, std::uint64_t& corrupt);
  // The row id of each key (RocksDB: given at the key's first write, dense from 0, kept for good);
  // -1 for a key that has none, and for every key of a store that keeps no ids.
  virtual void row_ids(std::span<const std::string_view> keys, std::int64_t* out) {
    std::fill(out, out + keys.size(), std::int64_t{-1});
  }
  // About how many values the store holds, without reading them; nullopt where the store cannot
  // tell cheaply.
  virtual std::optional<std::uint64_t> estimated_count() { return std::nullopt; }
  // A store that follows a writer elsewhere (a RocksDB Follower) applies the writer's new commits
  // -- when its catch-up interval has passed, or always unless due_only -- and returns true when
  // anything changed. Every other store has nothing to follow.
  virtual bool catch_up(bool /*due_only*/) { return false; }
};

}  // namespace hetcache::cache
