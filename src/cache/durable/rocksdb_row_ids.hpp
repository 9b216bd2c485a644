// Private: the row ids of a RocksDB database. Each key gets an int64 id at its first write -- the
// next one of a counter, so ids are dense from 0 -- and keeps it for good: a removed or cleared
// key that comes back gets its old id (an index built outside on the ids stays valid). Ids live in
// the metadata family as "id/<key>" -> 8 bytes little-endian, the counter as "next_id"; they are
// written in the same write batch as the vectors, so a crash leaves both or neither.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/write_batch.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cache/durable/durable_store.hpp"

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

  // A bulk ingest's ids (rocksdb_bulk.cpp). keys are sorted and distinct; input_index[i] is the
  // position of keys[i] in the caller's batch of batch_rows. ids[i] is the id keys[i] holds, or a
  // new one of the counter: new keys are numbered in batch order, as assign would number them.
  struct Planned {
    std::vector<std::int64_t> ids;
    std::vector<std::uint8_t> fresh;    // 1 where ids[i] is new
    std::int64_t next = 0;              // the counter after them
    std::unique_lock<std::mutex> lock;  // hold until the records are in the database
  };
  Planned plan(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta,
               std::span<const std::string_view> keys, std::span<const std::size_t> input_index,
               std::size_t batch_rows, const DurableStore::CpuTier& cpu, const std::string& path);
  // Adds the records of plan's new ids, then the counter, to a table file of the metadata family
  // (its keys in ascending order); false when there are no new ids (nothing added).
  static bool add_records(rocksdb::SstFileWriter& file, std::span<const std::string_view> keys,
                          const Planned& plan, const std::string& path);

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
