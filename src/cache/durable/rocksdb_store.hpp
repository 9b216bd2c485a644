// Private: the embedded durable store, one RocksDB database in a directory.
//
// Vectors live in the default column family as key -> value_format value; the "hetcache_meta"
// column family records the dimension, dtype and format, checked on every open, and each key's
// row id (rocksdb_row_ids.hpp). A compaction filter
// drops expired values, so RocksDB does not keep them forever. Every RocksDB status is checked; a
// failure becomes hetcache::Error naming the operation and the directory: Corruption for damaged
// files (with RocksDB's file and offset), StoreUnavailable otherwise.
#pragma once

#include <hetcache/cache.hpp>

#include <hetcache/error.hpp>

#include <rocksdb/options.h>
#include <rocksdb/status.h>

#include "cache/durable/durable_store.hpp"
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
#include <vector>

namespace hetcache::cache {

// The column family holding a database's metadata (dim, dtype, format); vectors live in the
// default family.
inline constexpr const char* kMetaFamily = "hetcache_meta";

// A RocksDB failure as our error: corruption as Corruption (RocksDB's text names the file and
// offset), the directory's lock held elsewhere as "locked", anything else as StoreUnavailable.
Error store_error(const std::string& what, const std::string& path, const rocksdb::Status& s);

// Throws store_error(what, path, s) unless s is ok.
void check_status(const rocksdb::Status& s, const char* what, const std::string& path);
// True when s says the directory's lock is held (by another process, or by this one).
bool is_lock_held(const rocksdb::Status& s);
// The "dim" metadata value as written: a positive decimal number; nullopt otherwise.
std::optional<std::size_t> parse_stored_dim(std::string_view text);

// Options for opening an existing database read-only: no lock, no file created.
rocksdb::DBOptions read_only_options();

// True when a process (this one included) holds the lock of the database directory at path.
bool lock_is_held(const std::string& path);

class RocksDbStore final : public DurableStore {
 public:
  // Throws Error: StoreUnavailable (cannot create/open/lock the directory), DimensionMismatch
  // (written with another dimension), Corruption (damaged files, or data without our metadata),
  // InvalidArgument (a ReadOnly or Follower open of a directory that is not a hetcache database).
  RocksDbStore(const RocksDbOptions& options, std::size_t dim);
  ~RocksDbStore() override;
  // The dimension a hetcache database at path was created with; nullopt when path holds none.
  // Opens read-only; throws Error(Corruption) for damaged files.
  static std::optional<std::size_t> stored_dim(const std::string& path);
  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  const std::string& path() const noexcept { return path_; }
  const std::string& name() const noexcept override { return name_; }

  void get_batch(std::span<const std::string_view> keys, float* out, std::size_t stride,
                 std::int64_t now_ms, BatchRead& read) override;
  // One atomic write batch.
  void put_batch(std::span<const std::string_view> keys, const float* rows, std::size_t stride,
                 std::int64_t expiry_ms) override;
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
  struct Db;
  std::string path_;
  std::string name_;
  std::size_t dim_;
  bool sync_;
  OpenMode mode_;
  std::int64_t catch_up_interval_ms_;
  std::mutex catch_up_mutex_;                  // one catch-up at a time
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
  struct OwnDir {
    std::string path;
    ~OwnDir();
  } follower_dir_;
  std::unique_ptr<Db> db_;
  RowIds row_ids_;  // gives new keys their ids in put_batch

  void drop_empty_logs();
  rocksdb::Status catch_up_now();
  // Throws Error(Unsupported) on a database opened read-only.
  void check_writable(const char* what) const;
};

}  // namespace hetcache::cache
