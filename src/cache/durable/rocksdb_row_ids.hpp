// Private: the row ids of a RocksDB database. Each key gets an int64 id at its first write -- the
// next one of a counter, so ids are dense from 0 -- and keeps it for good: a removed or cleared
// key that comes back gets its old id (an index built outside on the ids stays valid). Ids live in
// the metadata family as "id/<key>" -> 8 bytes little-endian, the counter as "next_id"; they are
// written in the same write batch as the vectors, so a crash leaves both or neither.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

namespace hetcache::cache {

class RowIds {
 public:
  // The metadata key of key's id.
  static std::string id_key(std::string_view key);

  // Adds to `batch` an id for every key that has none yet (and the counter) and returns the lock
  // to hold until `batch` is written: assignments are serialised, so two batches never give out
  // one id twice. Keys may repeat; a repeated new key gets one id.
  std::unique_lock<std::mutex> assign(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta,
                                      std::span<const std::string_view> keys,
                                      rocksdb::WriteBatch& batch, const std::string& path);

  // A read-write open of a database whose counter is missing (written before ids existed, or
  // repaired) gives every vector without an id the next ones, in key order, then the counter.
  static void fill_missing(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* vectors,
                           rocksdb::ColumnFamilyHandle* meta, const std::string& path);

  // out[i] = the id of keys[i], or -1.
  static void lookup(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta,
                     std::span<const std::string_view> keys, std::int64_t* out,
                     const std::string& path);

  // Ids of keys visited in ascending order, read alongside (one iterator over the id range).
  class Cursor {
   public:
    Cursor(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta, const rocksdb::ReadOptions& read);
    ~Cursor();
    // The id of key, or -1; keys must come in ascending order.
    std::int64_t id_of(std::string_view key);
    rocksdb::Status status() const;

   private:
    std::unique_ptr<rocksdb::Iterator> it_;
    std::string wanted_;
  };

 private:
  std::mutex mutex_;
};

}  // namespace hetcache::cache
