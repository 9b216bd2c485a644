// A cache's RocksDB directory opened with RocksDB itself (both column families), for tests that
// look at or damage what is on disk beneath the cache: raw values, metadata entries.
#pragma once

#include <rocksdb/db.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace hetcache::testing {

class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {"hetcache_meta", rocksdb::ColumnFamilyOptions()}};
    rocksdb::DB* raw = nullptr;
    check(rocksdb::DB::Open(rocksdb::DBOptions(), path, families, &handles_, &raw), "open " + path);
    db_.reset(raw);
  }
  ~RawDb() {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // The vectors' entries (the default column family).
  std::size_t count() {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), values()));
    std::size_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    return n;
  }
  std::string get(const std::string& key) {
    std::string value;
    check(db_->Get(rocksdb::ReadOptions(), values(), key, &value), "get " + key);
    return value;
  }
  void put(const std::string& key, const std::string& value) {
    check(db_->Put(rocksdb::WriteOptions(), values(), key, value), "put " + key);
  }
  // The metadata column family ("dim", "next_id", "id/...").
  void remove_meta(const std::string& key) {
    check(db_->Delete(rocksdb::WriteOptions(), meta(), key), "delete " + key);
  }
  void remove_meta_range(const std::string& begin, const std::string& end) {
    check(db_->DeleteRange(rocksdb::WriteOptions(), meta(), begin, end), "delete " + begin);
  }

 private:
  rocksdb::ColumnFamilyHandle* values() const { return handles_[0]; }
  rocksdb::ColumnFamilyHandle* meta() const { return handles_[1]; }
  static void check(const rocksdb::Status& s, const std::string& what) {
    if (!s.ok()) throw std::runtime_error(what + ": " + s.ToString());
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace hetcache::testing
