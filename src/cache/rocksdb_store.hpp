// Private: the embedded durable tier, one RocksDB database in a directory.
//
// Vectors live in the default column family as key -> value_format value; the "hetcache_meta"
// column family records the dimension, dtype and format, checked on every open. A compaction filter
// drops expired values, so RocksDB does not keep them forever. Every RocksDB status is checked; a
// failure becomes hetcache::Error(StoreUnavailable) naming the operation and the directory.
#pragma once

#include <hetcache/cache.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hetcache::cache {

class RocksDbStore {
 public:
  // Throws Error: StoreUnavailable (cannot create/open/lock the directory), DimensionMismatch
  // (written with another dimension), Corruption (not a hetcache database).
  RocksDbStore(const RocksDbOptions& options, std::size_t dim);
  ~RocksDbStore();
  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  const std::string& path() const noexcept { return path_; }

  enum class ReadResult : std::uint8_t { Found, Missing, Expired, Corrupt };
  struct BatchRead {
    std::vector<ReadResult> results;
    std::vector<std::int64_t> expiry_ms;    // for Found
    std::vector<std::string_view> reasons;  // for Corrupt (static text)
  };
  // Row i of the output (out + i * stride) receives keys[i] when Found.
  void get_batch(std::span<const std::string_view> keys, float* out, std::size_t stride,
                 std::int64_t now_ms, BatchRead& read) const;
  // One atomic write batch.
  void put_batch(std::span<const std::string_view> keys, const float* rows, std::size_t stride,
                 std::int64_t expiry_ms);
  // True when the key had a value.
  bool remove(std::string_view key);
  void clear();
  // Full compaction (expired values are dropped on the way).
  void compact();
  // Empty when a read of the metadata works, else why it does not.
  std::string probe() const;

 private:
  struct Db;
  std::string path_;
  std::size_t dim_;
  bool sync_;
  std::unique_ptr<Db> db_;
};

}  // namespace hetcache::cache
