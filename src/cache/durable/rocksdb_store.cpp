#include "cache/durable/rocksdb_store.hpp"

#include <hetcache/error.hpp>

#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "cache/durable/rocksdb_families.hpp"
#include "cache/durable/rocksdb_log.hpp"
#include "cache/durable/rocksdb_row_ids.hpp"
#include "cache/durable/value_format.hpp"

namespace hetcache::cache {
namespace {

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

namespace {

// The dimensions of the named collections (those that record one), read from one open of path. A
// read-only open beside a writer can miss what the writer moved while it read (RocksDB supports
// that only for secondary instances): beside a writer, a follower that caught up.
std::vector<std::pair<std::string, std::size_t>> read_dims(const std::string& path,
                                                           const std::vector<std::string>& names) {
  std::vector<std::pair<std::string, std::size_t>> out;
  if (names.empty()) return out;
  const bool follow = lock_is_held(path);
  FollowerDir own_dir;
  if (follow) own_dir.path = make_follower_dir();
  const auto open = OpenDatabase::reader(follow ? OpenMode::Follower : OpenMode::ReadOnly, path,
                                         own_dir.path, read_only_options(), {});
  if (follow) check_status(catch_up_with_writer(open->db()), "catch up with its writer", path);
  for (const auto& name : names) {
    rocksdb::ColumnFamilyHandle* meta = open->family(family_names(name).meta);
    if (meta == nullptr) continue;  // gone since the list was read
    std::string text;
    const rocksdb::Status got = open->db().Get(rocksdb::ReadOptions(), meta, "dim", &text);
    if (got.IsNotFound()) continue;
    check_status(got, "read metadata", path);
    const auto dim = parse_stored_dim(text);
    if (!dim)
      throw Error(ErrorCode::Corruption,
                  "the database '" + path + "' records an invalid dimension '" + text + "'");
    out.emplace_back(name, *dim);
  }
  return out;
}

}  // namespace

std::optional<std::size_t> RocksDbStore::stored_dim(const std::string& path,
                                                    std::string_view collection) {
  const std::vector<std::string> collections = collections_in(list_families(path));
  if (std::find(collections.begin(), collections.end(), collection) == collections.end())
    return std::nullopt;  // no such collection (or not a hetcache database at all)
  const auto dims = read_dims(path, {std::string(collection)});
  if (dims.empty()) return std::nullopt;
  return dims.front().second;
}

std::vector<std::pair<std::string, std::size_t>> RocksDbStore::collections(
    const std::string& path) {
  return read_dims(path, collections_in(list_families(path)));
}

RocksDbStore::RocksDbStore(const RocksDbOptions& options, std::size_t dim, StorageType value_type)
    : path_(options.path),
      collection_(options.collection),
      name_("RocksDB '" + options.path + "'" +
            (options.collection == kDefaultCollection
                 ? std::string()
                 : " collection '" + options.collection + "'")),
      dim_(dim),
      value_type_(value_type),
      sync_(options.durability == Durability::SyncedWal),
      bulk_rows_(options.bulk_ingest_rows),
      mode_(options.mode),
      catch_up_interval_ms_(options.catch_up_interval.count()),
      last_catch_up_ms_(steady_ms()),
      db_() {
  if (path_.empty()) throw Error(ErrorCode::InvalidArgument, "RocksDbOptions.path is empty");
  if (options.background_jobs < 1) {
    throw Error(ErrorCode::InvalidArgument, "RocksDbOptions.background_jobs must be >= 1, got " +
                                                std::to_string(options.background_jobs));
  }
  check_collection_name(collection_);
  if (options.catch_up_interval.count() < 0) {
    throw Error(ErrorCode::InvalidArgument,
                "RocksDbOptions.catch_up_interval must be >= 0 ms, got " +
                    std::to_string(options.catch_up_interval.count()));
  }
  const bool writer = mode_ == OpenMode::ReadWrite;
  if (!writer && !std::filesystem::exists(std::filesystem::path(path_) / "CURRENT")) {
    throw Error(ErrorCode::StoreUnavailable,
                "'" + path_ + "' holds no database to open " +
                    (mode_ == OpenMode::Follower ? "as a follower" : "read-only"));
  }
  // Like mkdir -p: RocksDB itself only creates the last component.
  std::error_code mkdir_error;
  if (writer) std::filesystem::create_directories(path_, mkdir_error);
  if (mkdir_error) {
    throw Error(ErrorCode::StoreUnavailable,
                "cannot create the database directory '" + path_ + "': " + mkdir_error.message());
  }
  if (mode_ == OpenMode::Follower) follower_dir_.path = make_follower_dir();
  rocksdb::DBOptions db_options = writer ? rocksdb::DBOptions() : read_only_options();
  if (writer) {
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.info_log = make_database_log(path_);
  }
  db_options.max_background_jobs = options.background_jobs;
  // A secondary instance keeps every table file open: one the writer deletes stays readable.
  db_options.max_open_files = -1;
  db_options.allow_mmap_reads = options.mmap_reads;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));  // misses skip most SST reads
  OpenDatabase::FamilyOptions families;
  families.vectors.write_buffer_size = options.write_buffer_bytes;
  families.vectors.compression =
      options.compress ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
  families.vectors.compaction_filter = expiry_filter();
  families.vectors.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // The metadata family holds a row id per key (rocksdb_row_ids.hpp), looked up on every write.
  families.meta.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  const std::vector<std::string> on_disk = list_families(path_);
  const std::vector<std::string> collections = collections_in(on_disk);
  const FamilyNames ours = family_names(collection_);
  const bool exists =
      std::find(collections.begin(), collections.end(), collection_) != collections.end();
  if (!exists && !writer) {
    if (collections.empty())
      throw Error(ErrorCode::InvalidArgument, "'" + path_ + "' is not a hetcache database");
    throw Error(ErrorCode::InvalidArgument, "the database '" + path_ + "' holds no collection '" +
                                                collection_ +
                                                "' (it holds: " + joined(collections) + ")");
  }
  if (writer) {
    db_ = OpenDatabase::writer(path_, collection_, db_options, families);
    claim_.db = db_;
    claim_.collection = collection_;
  } else {
    db_ = OpenDatabase::reader(mode_, path_, follower_dir_.path, db_options, families);
  }
  vectors_ = db_->family(ours.vectors);
  meta_ = db_->family(ours.meta);
  rocksdb::ColumnFamilyHandle* rocksdb_default = db_->family(rocksdb::kDefaultColumnFamilyName);
  // The open read the MANIFEST and the logs as a catch-up does, with the same gap.
  if (mode_ == OpenMode::Follower)
    check_status(catch_up_with_writer(db_->db()), "catch up with its writer", path_);

  // The metadata: written once when the directory is new, checked on every later open.
  std::string stored_dim;
  const rocksdb::Status meta = db_->db().Get(rocksdb::ReadOptions(), meta_, "dim", &stored_dim);
  if (meta.IsNotFound()) {
    if (!writer)
      throw Error(ErrorCode::InvalidArgument, "'" + path_ + "' is not a hetcache database");
    // A new collection goes into a new directory, a hetcache database, or an empty RocksDB
    // database -- never beside someone else's data.
    const bool foreign_families =
        collections.empty() && std::any_of(on_disk.begin(), on_disk.end(), [](const auto& n) {
          return n != rocksdb::kDefaultColumnFamilyName;
        });
    std::unique_ptr<rocksdb::Iterator> it(db_->db().NewIterator(
        rocksdb::ReadOptions(), collections.empty() ? rocksdb_default : vectors_));
    it->SeekToFirst();
    if (it->Valid() || foreign_families) {
      throw Error(ErrorCode::Corruption, "'" + path_ +
                                             "' holds data but no hetcache metadata; it is not a "
                                             "hetcache database");
    }
    check_status(it->status(), "scan", path_);
    rocksdb::WriteBatch batch;
    check_status(batch.Put(meta_, "dim", std::to_string(dim_)), "write metadata", path_);
    check_status(batch.Put(meta_, "dtype", "f32"), "write metadata", path_);
    check_status(batch.Put(meta_, "format", std::to_string(kValueFormatVersion)), "write metadata",
                 path_);
    rocksdb::WriteOptions sync;
    sync.sync = true;
    check_status(db_->db().Write(sync, &batch), "write metadata", path_);
  } else {
    check_status(meta, "read metadata", path_);
    if (stored_dim != std::to_string(dim_)) {
      throw Error(ErrorCode::DimensionMismatch,
                  "the collection '" + collection_ + "' of the database '" + path_ +
                      "' holds dim " + stored_dim + "; this cache has dim " + std::to_string(dim_));
    }
    if (writer) drop_empty_logs();
  }
  if (writer) RowIds::fill_missing(db_->db(), vectors_, meta_, path_);
}

// RocksDB before 8.3 keeps the empty write-ahead log of every earlier open until a memtable flush
// (facebook/rocksdb#11313): each open that wrote nothing left one more file. A flush switches to a
// new log and advances every empty column family past the old ones, which RocksDB then deletes.
// It costs one tiny table file, and runs only when earlier logs are still alive.
void RocksDbStore::drop_empty_logs() {
  std::size_t logs = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(path_, ec))
    logs += e.path().extension() == ".log";
  if (logs < 2) return;
  rocksdb::WriteOptions sync;
  sync.sync = true;
  check_status(db_->db().Put(sync, meta_, "format", std::to_string(kValueFormatVersion)),
               "write metadata", path_);
  check_status(db_->db().Flush(rocksdb::FlushOptions(), meta_), "flush", path_);
}

void RocksDbStore::check_writable(const char* what) const {
  if (mode_ != OpenMode::ReadWrite) {
    throw Error(ErrorCode::Unsupported,
                std::string(what) + ": the database '" + path_ + "' is open " +
                    (mode_ == OpenMode::Follower ? "as a follower (read-only)" : "read-only"));
  }
}

RocksDbStore::~RocksDbStore() = default;

bool RocksDbStore::catch_up(bool due_only) {
  if (mode_ != OpenMode::Follower) return false;
  const auto due = [&] {
    return steady_ms() - last_catch_up_ms_.load(std::memory_order_relaxed) >= catch_up_interval_ms_;
  };
  if (due_only && !due()) return false;
  std::lock_guard one_at_a_time(catch_up_mutex_);
  if (due_only && !due()) return false;  // another reader caught up meanwhile
  const rocksdb::SequenceNumber before = db_->db().GetLatestSequenceNumber();
  const std::int64_t started = steady_ms();
  check_status(catch_up_with_writer(db_->db()), "catch up with its writer", path_);
  last_catch_up_ms_.store(started, std::memory_order_relaxed);
  return db_->db().GetLatestSequenceNumber() != before;
}

void RocksDbStore::get_batch(std::span<const std::string_view> keys, float* out, std::size_t stride,
                             std::int64_t now_ms, BatchRead& read) {
  const std::size_t n = keys.size();
  read.reset(n);
  if (n == 0) return;
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(n);
  std::vector<rocksdb::Status> statuses(n);
  db_->db().MultiGet(rocksdb::ReadOptions(), vectors_, n, slices.data(), values.data(),
                     statuses.data());
  for (std::size_t i = 0; i < n; ++i) {
    if (statuses[i].IsNotFound()) continue;
    check_status(statuses[i], "read", path_);
    read.classify(i, keys[i], std::string_view(values[i].data(), values[i].size()), dim_,
                  out + i * stride, now_ms);
  }
}

std::optional<std::uint64_t> RocksDbStore::estimated_count() {
  std::uint64_t n = 0;
  if (!db_->db().GetIntProperty(vectors_, rocksdb::DB::Properties::kEstimateNumKeys, &n))
    return std::nullopt;
  return n;
}

void RocksDbStore::scan(std::size_t batch_rows, std::int64_t now_ms, const ScanVisit& visit,
                        std::uint64_t& expired, std::uint64_t& corrupt) {
  const std::size_t rows = std::max<std::size_t>(1, batch_rows);
  std::vector<std::string> keys;
  std::vector<std::int64_t> ids;
  std::vector<float> values(rows * dim_);
  rocksdb::ReadOptions read;
  read.fill_cache = false;  // a scan must not push the hot keys out of the block cache
  // Both families read as of one moment, so every id read belongs to the vectors read: a
  // snapshot, or for a follower (RocksDB has no snapshots there) both iterators made while no
  // catch-up runs.
  const bool follower = mode_ == OpenMode::Follower;
  const rocksdb::Snapshot* snapshot = follower ? nullptr : db_->db().GetSnapshot();
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* s;
    ~Release() {
      if (s) db->ReleaseSnapshot(s);
    }
  } release{&db_->db(), snapshot};
  read.snapshot = snapshot;
  std::unique_lock no_catch_up(catch_up_mutex_, std::defer_lock);
  if (follower) no_catch_up.lock();
  std::unique_ptr<rocksdb::Iterator> it(db_->db().NewIterator(read, vectors_));
  RowIds::Cursor row_ids(db_->db(), meta_, read);
  if (follower) no_catch_up.unlock();
  const auto deliver = [&] {
    visit(keys, ids, values.data(), keys.size());
    keys.clear();
    ids.clear();
  };
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    const DecodedValue v =
        decode_value(key, std::string_view(it->value().data(), it->value().size()), dim_,
                     values.data() + keys.size() * dim_);
    if (v.status != DecodeStatus::Ok) {
      ++corrupt;
      continue;
    }
    if (is_expired(v.expiry_ms, now_ms)) {
      ++expired;
      continue;
    }
    keys.emplace_back(key);
    ids.push_back(row_ids.id_of(key));
    if (keys.size() == rows) deliver();
  }
  check_status(it->status(), "scan", path_);
  check_status(row_ids.status(), "scan", path_);
  if (!keys.empty()) deliver();
}

void RocksDbStore::row_ids(std::span<const std::string_view> keys, std::int64_t* out) {
  RowIds::lookup(db_->db(), meta_, keys, out, path_);
}

void RocksDbStore::put_batch(std::span<const std::string_view> keys, const float* rows,
                             std::size_t stride, std::int64_t expiry_ms) {
  check_writable("put");
  rocksdb::WriteBatch batch;
  std::string value;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    encode_value(keys[i], rows + i * stride, dim_, expiry_ms, value, value_type_);
    check_status(batch.Put(vectors_, keys[i], value), "write", path_);
  }
  const auto ids_given = row_ids_.assign(db_->db(), meta_, keys, batch, path_);
  rocksdb::WriteOptions write;
  write.sync = sync_;
#if defined(__SANITIZE_THREAD__)
  std::lock_guard serialised(tsan_write_mutex_);
#endif
  check_status(db_->db().Write(write, &batch), "write", path_);
}

bool RocksDbStore::remove(std::string_view key) {
  check_writable("remove");
  std::string ignored;
  const rocksdb::Status found = db_->db().Get(rocksdb::ReadOptions(), vectors_, key, &ignored);
  if (!found.IsNotFound()) check_status(found, "read", path_);
  rocksdb::WriteOptions write;
  write.sync = sync_;
#if defined(__SANITIZE_THREAD__)
  std::lock_guard serialised(tsan_write_mutex_);
#endif
  check_status(db_->db().Delete(write, vectors_, key), "delete", path_);
  return found.ok();
}

void RocksDbStore::clear() {
  check_writable("clear");
  std::unique_ptr<rocksdb::Iterator> it(db_->db().NewIterator(rocksdb::ReadOptions(), vectors_));
  it->SeekToLast();
  check_status(it->status(), "scan", path_);
  if (!it->Valid()) return;
  // DeleteRange's end is exclusive: the last key plus a NUL byte is the smallest key after it.
  std::string end = it->key().ToString();
  end.push_back('\0');
  it.reset();
  rocksdb::WriteOptions write;
  write.sync = sync_;
#if defined(__SANITIZE_THREAD__)
  std::lock_guard serialised(tsan_write_mutex_);
#endif
  check_status(db_->db().DeleteRange(write, vectors_, rocksdb::Slice(), end), "clear", path_);
}

void RocksDbStore::compact() {
  check_writable("compact");
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  check_status(db_->db().CompactRange(options, vectors_, nullptr, nullptr), "compact", path_);
}

std::string RocksDbStore::probe() {
  std::string value;
  const rocksdb::Status s = db_->db().Get(rocksdb::ReadOptions(), meta_, "dim", &value);
  return s.ok() ? std::string() : s.ToString();
}

}  // namespace hetcache::cache
