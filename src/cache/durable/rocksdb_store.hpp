// Private: the embedded durable store, one RocksDB database in a directory.
//
// One collection of the database (rocksdb_families.hpp): its vectors family holds key ->
// value_format value; its metadata family records the dimension, dtype and format, checked on
// every open, and each key's row id (rocksdb_row_ids.hpp). A compaction filter
// drops expired values, so RocksDB does not keep them forever. Every RocksDB status is checked; a
// failure becomes hetcache::Error naming the operation and the directory: Corruption for damaged
// files (with RocksDB's file and offset), StoreUnavailable otherwise.
#pragma once

#include <hetcache/cache.hpp>

#include <hetcache/error.hpp>

#include <rocksdb/options.h>
#include <rocksdb/status.h>

#include "cache/durable/durable_store.hpp"
#include "cache/durable/rocksdb_database.hpp"
#include "cache/durable/rocksdb_open.hpp"
#include "cache/durable/rocksdb_row_ids.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hetcache::cache {

// The default collection's metadata family (dim, dtype, format, row ids); its vectors live in
// RocksDB's default family. Other collections: rocksdb_families.hpp.
inline constexpr const char* kMetaFamily = "hetcache_meta";

class RocksDbStore final : public DurableStore {
 public:
  // Throws Error: StoreUnavailable (cannot create/open/lock the directory), DimensionMismatch
  // (written with another dimension), Corruption (damaged files, or data without our metadata),
  // InvalidArgument (a ReadOnly or Follower open of a directory that is not a hetcache database).
  // Values are written as `value_type` (value_format.hpp); values of every type are read.
  RocksDbStore(const RocksDbOptions& options, std::size_t dim, StorageType value_type);
  ~RocksDbStore() override;
  // The dimension of a collection of the hetcache database at path; nullopt when path holds no
  // such collection. Opens read-only; throws Error(Corruption) for damaged files.
  static std::optional<std::size_t> stored_dim(const std::string& path,
                                               std::string_view collection);
  // Every collection with its dimension, by name.
  static std::vector<std::pair<std::string, std::size_t>> collections(const std::string& path);
  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  const std::string& path() const noexcept { return path_; }
  const std::string& name() const noexcept override { return name_; }

  void get_batch(std::span<const std::string_view> keys, float* out, std::size_t stride,
                 std::int64_t now_ms, BatchRead& read) override;
  // One atomic write batch.
  void put_batch(std::span<const std::string_view> keys, const float* rows, std::size_t stride,
                 std::int64_t expiry_ms) override;
  std::size_t bulk_rows() const override { return bulk_rows_; }
  // rocksdb_bulk.cpp.
  void put_bulk(std::span<const std::string_view> keys, const float* rows, std::size_t stride,
                std::int64_t expiry_ms, const CpuTier& cpu) override;
  bool remove(std::string_view key) override;
  void clear() override;
  // Full compaction (expired values are dropped on the way).
  void compact() override;
  std::string probe() override;
  void scan(std::size_t batch_rows, std::int64_t now_ms, const ScanVisit& visit,
            std::uint64_t& expired, std::uint64_t& corrupt) override;
  // RocksDB's estimate-num-keys: exact for a database only ever added to, an overestimate after
  // overwrites or removals (until they are compacted away).
  std::optional<std::uint64_t> estimated_count() override;
  void row_ids(std::span<const std::string_view> keys, std::int64_t* out) override;
  // Follower only: RocksDB's TryCatchUpWithPrimary, at most once per catch_up_interval when
  // due_only; true when the latest sequence number moved.
  bool catch_up(bool due_only) override;

 private:
  std::string path_;
  std::string collection_;
  std::string name_;
  std::size_t dim_;
  StorageType value_type_;
  bool sync_;
  std::size_t bulk_rows_;
  OpenMode mode_;
  std::int64_t catch_up_interval_ms_;
  std::mutex catch_up_mutex_;                   // one catch-up at a time
  std::atomic<std::int64_t> last_catch_up_ms_;  // steady clock
#if defined(__SANITIZE_THREAD__)
  // TSan builds only: RocksDB (uninstrumented) merges concurrent writes into one group whose
  // leader reuses a DB-owned batch buffer, handed between leaders by atomics TSan cannot see; the
  // buffer's std::string code is instrumented (it resolves to our instantiation), so every leader
  // change looks like a race. Serialising our writes here keeps RocksDB from grouping them and
  // hides nothing of ours. Release builds let RocksDB group commits as usual.
  std::mutex tsan_write_mutex_;
#endif
  // Follower only: the secondary instance's own directory (its LOG), removed after the database
  // closes (declared before db_, so destroyed after it).
  FollowerDir follower_dir_;
  std::shared_ptr<OpenDatabase> db_;  // shared with this directory's other writer stores
  rocksdb::ColumnFamilyHandle* vectors_ = nullptr;  // this collection's two families
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  // A writer's hold on its collection, given back first when the store closes (or fails to open).
  struct Claim {
    std::shared_ptr<OpenDatabase> db;
    std::string collection;
    ~Claim() {
      if (db) db->release(collection);
    }
  } claim_;
  RowIds row_ids_;  // gives new keys their ids in put_batch

  void drop_empty_logs();
  // Throws Error(Unsupported) on a database opened read-only.
  void check_writable(const char* what) const;
};

}  // namespace hetcache::cache
