// repair_database: RocksDB's RepairDB, then a per-entry salvage of the tables it set aside, then
// every value verified. Works on the directory alone (no cache, no store object of the caller).
#include <hetcache/error.hpp>
#include <hetcache/repair.hpp>

#include <rocksdb/db.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/table_properties.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "cache/durable/rocksdb_families.hpp"
#include "cache/durable/rocksdb_log.hpp"
#include "cache/durable/rocksdb_row_ids.hpp"
#include "cache/durable/rocksdb_store.hpp"
#include "cache/durable/value_format.hpp"

namespace hetcache {
namespace fs = std::filesystem;
namespace {

using cache::check_status;

bool has_rocksdb_files(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name == "CURRENT" || name.starts_with("MANIFEST-") || e.path().extension() == ".sst" ||
        e.path().extension() == ".log")
      return true;
  }
  return false;
}

std::set<std::string> files_in(const fs::path& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.insert(e.path().filename().string());
  return names;
}

// What the scan of the database as it was could read, over every collection.
void count_before(const std::string& path, RepairReport& r) {
  try {
    const auto collections = cache::RocksDbStore::collections(path);
    if (collections.empty()) {
      r.before = "no hetcache metadata could be read";
      return;
    }
    std::uint64_t expired = 0, corrupt = 0;
    for (const auto& [name, dim] : collections) {
      RocksDbOptions options;
      options.path = path;
      options.collection = name;
      options.mode = OpenMode::ReadOnly;
      cache::RocksDbStore store(options, dim, StorageType::F32);  // reads every type
      r.opened_before = true;
      try {
        store.scan(
            std::max<std::size_t>(1, (std::size_t{64} << 20) / (dim * sizeof(float))),
            cache::now_unix_ms(),
            [&](std::span<const std::string>, std::span<const std::int64_t>, const float*,
                std::size_t n) { r.vectors_before += n; },
            expired, corrupt);
      } catch (const Error& e) {
        r.before = "opened, but reading stopped after " + std::to_string(r.vectors_before) +
                   " vectors: " + e.what();
        return;
      }
    }
    r.before = "opened; " + std::to_string(r.vectors_before) + " live vectors read (" +
               std::to_string(expired) + " expired, " + std::to_string(corrupt) +
               " failing their checksum)";
  } catch (const Error& e) {
    r.before = std::string("would not open: ") + e.what();
  }
}

// The entries of a table RocksDB set aside, read without block checksums (each of our values
// carries its own, over its key too); the read stops where a block cannot be parsed.
struct SetAsideTable {
  std::string family;  // the column family the table belonged to
  std::uint64_t listed = 0;
  std::vector<std::pair<std::string, std::string>> entries;
};

bool read_set_aside(const fs::path& file, SetAsideTable& t, std::vector<std::string>& notes) {
  rocksdb::Options options;
  options.info_log = cache::make_silent_log();
  rocksdb::SstFileReader reader(options);
  const rocksdb::Status opened = reader.Open(file.string());
  const std::string name = "lost/" + file.filename().string();
  if (!opened.ok()) {
    notes.push_back(name + ": unreadable (" + opened.ToString() + "); its entries are lost");
    return false;
  }
  if (const auto props = reader.GetTableProperties()) {
    t.family = props->column_family_name;
    t.listed = props->num_entries;
  }
  rocksdb::ReadOptions read;
  read.verify_checksums = false;
  read.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(reader.NewIterator(read));
  for (it->SeekToFirst(); it->Valid(); it->Next())
    t.entries.emplace_back(it->key().ToString(), it->value().ToString());
  if (!it->status().ok())
    notes.push_back(name + ": read stopped after " + std::to_string(t.entries.size()) + " of " +
                    std::to_string(t.listed) + " entries (" + it->status().ToString() + ")");
  return true;
}

// Opens the database read-write, flushes every memtable into tables and verifies every block's
// checksum; false (with a note) when any step fails.
bool opens_and_verifies(const std::string& path, const rocksdb::DBOptions& options,
                        const std::vector<rocksdb::ColumnFamilyDescriptor>& families,
                        std::vector<std::string>& notes) {
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, families, &handles, &raw);
  if (!s.ok()) {
    if (cache::is_lock_held(s)) check_status(s, "open", path);
    notes.push_back("does not open (" + s.ToString() + ")");
    return false;
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  s = db->Flush(rocksdb::FlushOptions(), handles);
  if (s.ok()) s = db->VerifyChecksum();
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  if (!s.ok()) notes.push_back("opens, but " + s.ToString());
  return s.ok();
}

// One collection of the opened, repaired database: its dimension recovered, the metadata rewritten
// when it differs, the set-aside entries of its vectors salvaged, every value verified, row ids
// given to the vectors that lack one.
void repair_collection(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* vectors,
                       rocksdb::ColumnFamilyHandle* meta, const cache::FamilyNames& names,
                       const std::string& collection, const std::vector<SetAsideTable>& tables,
                       const std::string& path, RepairReport& r) {
  // The dimension: the metadata, else a set-aside metadata table, else the first value's header.
  std::string text;
  std::optional<std::size_t> dim;
  if (db.Get(rocksdb::ReadOptions(), meta, "dim", &text).ok()) dim = cache::parse_stored_dim(text);
  for (const auto& t : tables)
    for (const auto& [key, value] : t.entries)
      if (!dim && t.family == names.meta && key == "dim") dim = cache::parse_stored_dim(value);
  if (!dim) {
    std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), vectors));
    for (it->SeekToFirst(); it->Valid() && !dim; it->Next())
      dim = cache::stated_dim(std::string_view(it->value().data(), it->value().size()));
    for (const auto& t : tables)
      for (const auto& [key, value] : t.entries)
        if (!dim && t.family == names.vectors) dim = cache::stated_dim(value);
  }
  if (!dim) {
    throw Error(ErrorCode::Corruption,
                "'" + path + "': no vector dimension could be recovered for the collection '" +
                    collection + "' (no readable metadata or value)");
  }
  rocksdb::WriteOptions sync;
  sync.sync = true;
  if (text != std::to_string(*dim)) {
    rocksdb::WriteBatch batch;
    check_status(batch.Put(meta, "dim", std::to_string(*dim)), "write metadata", path);
    check_status(batch.Put(meta, "dtype", "f32"), "write metadata", path);
    check_status(batch.Put(meta, "format", std::to_string(cache::kValueFormatVersion)),
                 "write metadata", path);
    check_status(db.Write(sync, &batch), "write metadata", path);
    r.notes.push_back("metadata of '" + collection + "' rewritten (dim " + std::to_string(*dim) +
                      ")");
  }

  // Set-aside entries whose checksum verifies are stored again unless the key is held already.
  std::vector<float> row(*dim);
  for (const auto& t : tables) {
    if (t.family != names.vectors) continue;
    std::uint64_t verified = 0;
    rocksdb::WriteBatch batch;
    for (const auto& [key, value] : t.entries) {
      if (cache::decode_value(key, value, *dim, row.data()).status != cache::DecodeStatus::Ok)
        continue;
      ++verified;
      std::string held;
      const rocksdb::Status found = db.Get(rocksdb::ReadOptions(), vectors, key, &held);
      if (found.ok()) continue;
      if (!found.IsNotFound()) check_status(found, "read", path);
      check_status(batch.Put(vectors, key, value), "write", path);
      ++r.salvaged;
    }
    check_status(db.Write(sync, &batch), "write", path);
    r.unrecoverable += t.listed > verified ? t.listed - verified : 0;
  }

  // Every value verified; the corrupt ones deleted (a read would skip them anyway).
  const std::int64_t now = cache::now_unix_ms();
  rocksdb::WriteBatch removals;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), vectors));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    const cache::DecodedValue v = cache::decode_value(
        key, std::string_view(it->value().data(), it->value().size()), *dim, row.data());
    if (v.status != cache::DecodeStatus::Ok) {
      check_status(removals.Delete(vectors, it->key()), "delete", path);
      ++r.corrupt_removed;
    } else if (cache::is_expired(v.expiry_ms, now)) {
      ++r.expired_after;
    } else {
      ++r.vectors_after;
    }
  }
  check_status(it->status(), "scan after repair", path);
  it.reset();
  check_status(db.Write(sync, &removals), "delete", path);
  // Salvaged keys may have lost their row ids with a set-aside metadata table: every vector
  // without one gets the next ones (kept ids stay as they were).
  check_status(db.Delete(sync, meta, "next_id"), "write metadata", path);
  cache::RowIds::fill_missing(db, vectors, meta, path);
}

}  // namespace

RepairReport repair_database(const std::string& path) {
  if (!fs::is_directory(path) || !has_rocksdb_files(path))
    throw Error(ErrorCode::InvalidArgument, "'" + path + "' holds no database to repair");
  RepairReport r;
  count_before(path, r);

  const fs::path lost = fs::path(path) / "lost";
  const std::set<std::string> lost_before = files_in(lost);
  rocksdb::DBOptions db_options;
  db_options.info_log = cache::make_database_log(path);
  // Every family the MANIFEST names (RocksDB opens a database only with all of them), and at
  // least the default collection's two.
  std::vector<std::string> names;
  try {
    names = cache::list_families(path);
  } catch (const Error& e) {
    r.notes.push_back(std::string("the list of collections is unreadable (") + e.what() +
                      "); repairing the default collection");
  }
  for (const auto& family :
       {std::string(rocksdb::kDefaultColumnFamilyName), std::string(cache::kMetaFamily)})
    if (std::find(names.begin(), names.end(), family) == names.end()) names.push_back(family);
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const auto& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  // RocksDB's repair (7.x) drops write-ahead-log records of a column family it has no table of
  // yet -- our metadata -- so it runs only when needed, and after the logs were flushed where the
  // database still opens: a database that opens and whose every block verifies is not handed to
  // it at all.
  if (!opens_and_verifies(path, db_options, families, r.notes)) {
    check_status(rocksdb::RepairDB(path, db_options, families, rocksdb::ColumnFamilyOptions()),
                 "repair", path);
    r.notes.push_back("RocksDB's repair rebuilt the manifest");
  }
  // A metadata family is made again if the repair lost it (its values are checked below).
  db_options.create_missing_column_families = true;

  std::vector<SetAsideTable> tables;
  for (const std::string& name : files_in(lost)) {
    if (lost_before.count(name)) continue;
    if (fs::path(name).extension() != ".sst") {
      r.notes.push_back("lost/" + name + ": set aside by RocksDB's repair (not a table)");
      continue;
    }
    ++r.tables_set_aside;
    SetAsideTable t;
    if (read_set_aside(lost / name, t, r.notes)) tables.push_back(std::move(t));
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  check_status(rocksdb::DB::Open(db_options, path, families, &handles, &raw), "open after repair",
               path);
  std::unique_ptr<rocksdb::DB> db(raw);
  struct Handles {
    rocksdb::DB* db;
    std::vector<rocksdb::ColumnFamilyHandle*>& h;
    ~Handles() {
      for (auto* x : h) db->DestroyColumnFamilyHandle(x).PermitUncheckedError();
    }
  } release{db.get(), handles};
  const auto handle_of = [&](const std::string& family) {
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == family) return handles[i];
    return static_cast<rocksdb::ColumnFamilyHandle*>(nullptr);
  };
  for (const std::string& collection : cache::collections_in(names)) {
    const cache::FamilyNames f = cache::family_names(collection);
    repair_collection(*db, handle_of(f.vectors), handle_of(f.meta), f, collection, tables, path, r);
  }
  check_status(db->FlushWAL(true), "sync", path);
  return r;
}

}  // namespace hetcache
