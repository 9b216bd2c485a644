// Private: an open RocksDB database and its column families. RocksDB lets one instance per process
// write a directory, so every read-write store of a directory in this process shares one (each
// store its own collection: a second read-write store of one collection is refused as "locked",
// which keeps each collection's memory store the only one in front of it). ReadOnly and Follower
// stores take no lock and each open an instance of their own.
#pragma once

#include <hetcache/cache.hpp>

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

namespace hetcache::cache {

class OpenDatabase {
 public:
  // Column family options by kind: every family of a collection's vectors, every metadata family.
  struct FamilyOptions {
    rocksdb::ColumnFamilyOptions vectors, meta;
  };

  // The shared read-write instance of path -- opened with every family on disk, or the one this
  // process has open -- with `collection`'s two families created when missing, and the collection
  // claimed for writing until release(). Throws Error(StoreUnavailable, "... is locked ...") when
  // another process holds the directory or a store in this process writes the collection.
  static std::shared_ptr<OpenDatabase> writer(const std::string& path,
                                              const std::string& collection,
                                              const rocksdb::DBOptions& db_options,
                                              const FamilyOptions& families);
  // An instance of its own, without the lock: read-only, or a Follower keeping its files in
  // own_dir. Every family on disk is opened.
  static std::shared_ptr<OpenDatabase> reader(OpenMode mode, const std::string& path,
                                              const std::string& own_dir,
                                              const rocksdb::DBOptions& db_options,
                                              const FamilyOptions& families);
  ~OpenDatabase();
  OpenDatabase(const OpenDatabase&) = delete;
  OpenDatabase& operator=(const OpenDatabase&) = delete;

  // The writer store of collection has closed: another may open it.
  void release(const std::string& collection);

  rocksdb::DB& db() const { return *db_; }
  // The handle of a family; nullptr when the database has none of that name.
  rocksdb::ColumnFamilyHandle* family(const std::string& name) const;

 private:
  OpenDatabase() = default;
  void open_all(OpenMode mode, const std::string& path, const std::string& own_dir,
                const rocksdb::DBOptions& db_options, const FamilyOptions& families,
                std::vector<std::string> names);

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<std::string> names_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::set<std::string> writing_;  // collections with a read-write store (guarded by the registry)
};

// The compaction filter of every vectors family: drops values whose expiry has passed (stateless,
// one for the process).
const rocksdb::CompactionFilter* expiry_filter();

}  // namespace hetcache::cache
