#include "cache/durable/rocksdb_store.hpp"

#include <hetcache/error.hpp>

#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <charconv>
#include <filesystem>
#include <optional>
#include <string>

#include "cache/durable/rocksdb_log.hpp"
#include "cache/durable/value_format.hpp"

namespace hetcache::cache {
namespace {

// Drops values whose expiry has passed. Values it cannot parse are kept: they are reported as
// corrupt on read rather than silently destroyed.
class ExpiryCompactionFilter final : public rocksdb::CompactionFilter {
 public:
  bool Filter(int /*level*/, const rocksdb::Slice& /*key*/, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    std::int64_t expiry_ms = 0;
    if (!peek_expiry(std::string_view(value.data(), value.size()), expiry_ms)) return false;
    return is_expired(expiry_ms, now_unix_ms());
  }
  const char* Name() const override { return "hetcache.ExpiryCompactionFilter"; }
};

}  // namespace

bool is_lock_held(const rocksdb::Status& s) {
  // PosixFileSystem::LockFile's two failures: held by another process, or by this one.
  const std::string text = s.ToString();
  return s.IsIOError() && (text.find("While lock file") != std::string::npos ||
                           text.find("lock hold by current process") != std::string::npos);
}

std::optional<std::size_t> parse_stored_dim(std::string_view text) {
  std::size_t dim = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), dim);
  if (ec != std::errc() || end != text.data() + text.size() || dim == 0) return std::nullopt;
  return dim;
}

Error store_error(const std::string& what, const std::string& path, const rocksdb::Status& s) {
  const std::string text = s.ToString();
  if (s.IsCorruption())
    return Error(ErrorCode::Corruption,
                 "the database '" + path + "' is corrupt (found by " + what + "): " + text);
  if (is_lock_held(s))
    return Error(ErrorCode::StoreUnavailable,
                 "the database directory '" + path +
                     "' is locked: another process (or another cache in this process) has it "
                     "open for writing (" +
                     text + ")");
  return Error(ErrorCode::StoreUnavailable,
               "RocksDB " + what + " in '" + path + "' failed: " + text);
}

void check_status(const rocksdb::Status& s, const char* what, const std::string& path) {
  if (!s.ok()) throw store_error(what, path, s);
}

namespace {

constexpr std::size_t kVectorFamily = 0, kMetaFamilyIndex = 1;  // in every families list below

}  // namespace

rocksdb::DBOptions read_only_options() {
  rocksdb::DBOptions options;
  options.info_log = make_silent_log();
  return options;
}

struct RocksDbStore::Db {
  ExpiryCompactionFilter filter;  // outlives the database (declared first, destroyed last)
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::ColumnFamilyHandle* vectors = nullptr;
  rocksdb::ColumnFamilyHandle* meta = nullptr;

  ~Db() {
    if (db) {
      if (vectors) db->DestroyColumnFamilyHandle(vectors).PermitUncheckedError();
      if (meta) db->DestroyColumnFamilyHandle(meta).PermitUncheckedError();
      // Close flushes nothing extra (the WAL already holds every write); its status only matters
      // to callers who could act on it, and a destructor cannot.
      db->Close().PermitUncheckedError();
    }
  }
};

std::optional<std::size_t> RocksDbStore::stored_dim(const std::string& path) {
  if (!std::filesystem::exists(std::filesystem::path(path) / "CURRENT")) return std::nullopt;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kMetaFamily, rocksdb::ColumnFamilyOptions()}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  // Read-only: takes no lock, so it answers while another process writes.
  const rocksdb::Status opened =
      rocksdb::DB::OpenForReadOnly(read_only_options(), path, families, &handles, &raw);
  // A RocksDB database without our metadata family is not ours.
  if (opened.IsInvalidArgument() && opened.ToString().find(kMetaFamily) != std::string::npos)
    return std::nullopt;
  check_status(opened, "open", path);
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string text;
  const rocksdb::Status got =
      db->Get(rocksdb::ReadOptions(), handles[kMetaFamilyIndex], "dim", &text);
  for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
  if (got.IsNotFound()) return std::nullopt;
  check_status(got, "read metadata", path);
  const auto dim = parse_stored_dim(text);
  if (!dim)
    throw Error(ErrorCode::Corruption,
                "the database '" + path + "' records an invalid dimension '" + text + "'");
  return dim;
}

RocksDbStore::RocksDbStore(const RocksDbOptions& options, std::size_t dim)
    : path_(options.path),
      name_("RocksDB '" + options.path + "'"),
      dim_(dim),
      sync_(options.durability == Durability::SyncedWal),
      read_only_(options.read_only),
      db_(std::make_unique<Db>()) {
  if (path_.empty()) throw Error(ErrorCode::InvalidArgument, "RocksDbOptions.path is empty");
  if (options.background_jobs < 1) {
    throw Error(ErrorCode::InvalidArgument, "RocksDbOptions.background_jobs must be >= 1, got " +
                                                std::to_string(options.background_jobs));
  }
  if (read_only_ && !std::filesystem::exists(std::filesystem::path(path_) / "CURRENT"))
    throw Error(ErrorCode::StoreUnavailable, "'" + path_ + "' holds no database to open read-only");
  // Like mkdir -p: RocksDB itself only creates the last component.
  std::error_code mkdir_error;
  if (!read_only_) std::filesystem::create_directories(path_, mkdir_error);
  if (mkdir_error) {
    throw Error(ErrorCode::StoreUnavailable,
                "cannot create the database directory '" + path_ + "': " + mkdir_error.message());
  }
  rocksdb::DBOptions db_options = read_only_ ? read_only_options() : rocksdb::DBOptions();
  if (!read_only_) {
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.info_log = make_database_log(path_);
  }
  db_options.max_background_jobs = options.background_jobs;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));  // misses skip most SST reads
  rocksdb::ColumnFamilyOptions vector_family;
  vector_family.write_buffer_size = options.write_buffer_bytes;
  vector_family.compression = options.compress ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
  vector_family.compaction_filter = &db_->filter;
  vector_family.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, vector_family},
      {kMetaFamily, rocksdb::ColumnFamilyOptions()}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status opened =
      read_only_ ? rocksdb::DB::OpenForReadOnly(db_options, path_, families, &handles, &raw)
                 : rocksdb::DB::Open(db_options, path_, families, &handles, &raw);
  if (read_only_ && opened.IsInvalidArgument() &&
      opened.ToString().find(kMetaFamily) != std::string::npos)
    throw Error(ErrorCode::InvalidArgument, "'" + path_ + "' is not a hetcache database");
  check_status(opened, "open", path_);
  db_->db.reset(raw);
  db_->vectors = handles[kVectorFamily];
  db_->meta = handles[kMetaFamilyIndex];

  // The metadata: written once when the directory is new, checked on every later open.
  std::string stored_dim;
  const rocksdb::Status meta = db_->db->Get(rocksdb::ReadOptions(), db_->meta, "dim", &stored_dim);
  if (meta.IsNotFound()) {
    if (read_only_)
      throw Error(ErrorCode::InvalidArgument, "'" + path_ + "' is not a hetcache database");
    std::unique_ptr<rocksdb::Iterator> it(
        db_->db->NewIterator(rocksdb::ReadOptions(), db_->vectors));
    it->SeekToFirst();
    if (it->Valid()) {
      throw Error(ErrorCode::Corruption, "'" + path_ +
                                             "' holds data but no hetcache metadata; it is not a "
                                             "hetcache database");
    }
    check_status(it->status(), "scan", path_);
    rocksdb::WriteBatch batch;
    check_status(batch.Put(db_->meta, "dim", std::to_string(dim_)), "write metadata", path_);
    check_status(batch.Put(db_->meta, "dtype", "f32"), "write metadata", path_);
    check_status(batch.Put(db_->meta, "format", std::to_string(kValueFormatVersion)),
                 "write metadata", path_);
    rocksdb::WriteOptions sync;
    sync.sync = true;
    check_status(db_->db->Write(sync, &batch), "write metadata", path_);
  } else {
    check_status(meta, "read metadata", path_);
    if (stored_dim != std::to_string(dim_)) {
      throw Error(ErrorCode::DimensionMismatch, "the database '" + path_ +
                                                    "' was written with dim " + stored_dim +
                                                    "; this cache has dim " + std::to_string(dim_));
    }
    if (!read_only_) drop_empty_logs();
  }
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
  check_status(db_->db->Put(sync, db_->meta, "format", std::to_string(kValueFormatVersion)),
               "write metadata", path_);
  check_status(db_->db->Flush(rocksdb::FlushOptions(), db_->meta), "flush", path_);
}

void RocksDbStore::check_writable(const char* what) const {
  if (read_only_)
    throw Error(ErrorCode::Unsupported,
                std::string(what) + ": the database '" + path_ + "' is open read-only");
}

RocksDbStore::~RocksDbStore() = default;

void RocksDbStore::get_batch(std::span<const std::string_view> keys, float* out, std::size_t stride,
                             std::int64_t now_ms, BatchRead& read) {
  const std::size_t n = keys.size();
  read.reset(n);
  if (n == 0) return;
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(n);
  std::vector<rocksdb::Status> statuses(n);
  db_->db->MultiGet(rocksdb::ReadOptions(), db_->vectors, n, slices.data(), values.data(),
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
  if (!db_->db->GetIntProperty(db_->vectors, rocksdb::DB::Properties::kEstimateNumKeys, &n))
    return std::nullopt;
  return n;
}

void RocksDbStore::scan(std::size_t batch_rows, std::int64_t now_ms, const ScanVisit& visit,
                        std::uint64_t& expired, std::uint64_t& corrupt) {
  const std::size_t rows = std::max<std::size_t>(1, batch_rows);
  std::vector<std::string> keys;
  std::vector<float> values(rows * dim_);
  rocksdb::ReadOptions read;
  read.fill_cache = false;  // a scan must not push the hot keys out of the block cache
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(read, db_->vectors));
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
    if (keys.size() == rows) {
      visit(keys, values.data(), keys.size());
      keys.clear();
    }
  }
  check_status(it->status(), "scan", path_);
  if (!keys.empty()) visit(keys, values.data(), keys.size());
}

void RocksDbStore::put_batch(std::span<const std::string_view> keys, const float* rows,
                             std::size_t stride, std::int64_t expiry_ms) {
  check_writable("put");
  rocksdb::WriteBatch batch;
  std::string value;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    encode_value(keys[i], rows + i * stride, dim_, expiry_ms, value);
    check_status(batch.Put(db_->vectors, keys[i], value), "write", path_);
  }
  rocksdb::WriteOptions write;
  write.sync = sync_;
#if defined(__SANITIZE_THREAD__)
  std::lock_guard serialised(tsan_write_mutex_);
#endif
  check_status(db_->db->Write(write, &batch), "write", path_);
}

bool RocksDbStore::remove(std::string_view key) {
  check_writable("remove");
  std::string ignored;
  const rocksdb::Status found = db_->db->Get(rocksdb::ReadOptions(), db_->vectors, key, &ignored);
  if (!found.IsNotFound()) check_status(found, "read", path_);
  rocksdb::WriteOptions write;
  write.sync = sync_;
#if defined(__SANITIZE_THREAD__)
  std::lock_guard serialised(tsan_write_mutex_);
#endif
  check_status(db_->db->Delete(write, db_->vectors, key), "delete", path_);
  return found.ok();
}

void RocksDbStore::clear() {
  check_writable("clear");
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(rocksdb::ReadOptions(), db_->vectors));
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
  check_status(db_->db->DeleteRange(write, db_->vectors, rocksdb::Slice(), end), "clear", path_);
}

void RocksDbStore::compact() {
  check_writable("compact");
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  check_status(db_->db->CompactRange(options, db_->vectors, nullptr, nullptr), "compact", path_);
}

std::string RocksDbStore::probe() {
  std::string value;
  const rocksdb::Status s = db_->db->Get(rocksdb::ReadOptions(), db_->meta, "dim", &value);
  return s.ok() ? std::string() : s.ToString();
}

}  // namespace hetcache::cache
