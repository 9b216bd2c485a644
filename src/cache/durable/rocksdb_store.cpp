#include "cache/durable/rocksdb_store.hpp"

#include <hetcache/error.hpp>

#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "cache/durable/rocksdb_log.hpp"
#include "cache/durable/rocksdb_row_ids.hpp"
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

// RocksDB locks <dir>/LOCK with a POSIX record lock. Opening that file to ask (F_GETLK) is not an
// option: closing any descriptor of it drops every lock this process holds on it, RocksDB's
// included. /proc/locks lists every lock by device and inode instead.
bool lock_is_held(const std::string& path) {
  struct stat st {};
  if (::stat((std::filesystem::path(path) / "LOCK").c_str(), &st) != 0) return false;
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    // "1: POSIX  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF"; a waiter's line has "->" after "1:".
    std::istringstream fields(line);
    std::string id, kind, advisory, access, pid, file;
    if (!(fields >> id >> kind >> advisory >> access >> pid >> file) || kind == "->") continue;
    unsigned major = 0, minor = 0;
    unsigned long long inode = 0;
    if (std::sscanf(file.c_str(), "%x:%x:%llu", &major, &minor, &inode) != 3) continue;
    if (inode == st.st_ino && major == ::major(st.st_dev) && minor == ::minor(st.st_dev))
      return true;
  }
  return false;
}

namespace {

bool is_missing_file(const rocksdb::Status& s) {
  return s.IsPathNotFound() ||
         (s.IsIOError() && s.ToString().find("No such file") != std::string::npos);
}

// Opens path without its lock, read-only or as a secondary instance in own_dir. A writer in
// another process may delete a file the MANIFEST just read still names (a flush or compaction
// finished meanwhile): such an open fails on the missing file and is tried again.
rocksdb::Status open_unlocked(OpenMode mode, const rocksdb::DBOptions& options,
                              const std::string& path, const std::string& own_dir,
                              const std::vector<rocksdb::ColumnFamilyDescriptor>& families,
                              std::vector<rocksdb::ColumnFamilyHandle*>& handles,
                              rocksdb::DB*& raw) {
  constexpr int kAttempts = 8;
  rocksdb::Status s;
  for (int attempt = 1;; ++attempt) {
    handles.clear();
    s = mode == OpenMode::Follower
            ? rocksdb::DB::OpenAsSecondary(options, path, own_dir, families, &handles, &raw)
            : rocksdb::DB::OpenForReadOnly(options, path, families, &handles, &raw);
    if (!is_missing_file(s) || attempt == kAttempts) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(5 * attempt));
  }
}

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string make_own_dir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "hetcache-follower-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw Error(ErrorCode::StoreUnavailable,
                "cannot create a follower's directory '" + pattern + "': " + std::strerror(errno));
  }
  return pattern;
}

}  // namespace

RocksDbStore::OwnDir::~OwnDir() {
  std::error_code ignored;
  if (!path.empty()) std::filesystem::remove_all(path, ignored);
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
      open_unlocked(OpenMode::ReadOnly, read_only_options(), path, {}, families, handles, raw);
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
      mode_(options.mode),
      catch_up_interval_ms_(options.catch_up_interval.count()),
      last_catch_up_ms_(steady_ms()),
      db_(std::make_unique<Db>()) {
  if (path_.empty()) throw Error(ErrorCode::InvalidArgument, "RocksDbOptions.path is empty");
  if (options.background_jobs < 1) {
    throw Error(ErrorCode::InvalidArgument, "RocksDbOptions.background_jobs must be >= 1, got " +
                                                std::to_string(options.background_jobs));
  }
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
  if (mode_ == OpenMode::Follower) follower_dir_.path = make_own_dir();
  rocksdb::DBOptions db_options = writer ? rocksdb::DBOptions() : read_only_options();
  if (writer) {
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.info_log = make_database_log(path_);
  }
  db_options.max_background_jobs = options.background_jobs;
  // A secondary instance keeps every table file open: one the writer deletes stays readable.
  db_options.max_open_files = -1;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));  // misses skip most SST reads
  rocksdb::ColumnFamilyOptions vector_family;
  vector_family.write_buffer_size = options.write_buffer_bytes;
  vector_family.compression = options.compress ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
  vector_family.compaction_filter = &db_->filter;
  vector_family.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  // The metadata family holds a row id per key (rocksdb_row_ids.hpp), looked up on every write.
  rocksdb::ColumnFamilyOptions meta_family;
  meta_family.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, vector_family}, {kMetaFamily, meta_family}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status opened =
      writer ? rocksdb::DB::Open(db_options, path_, families, &handles, &raw)
             : open_unlocked(mode_, db_options, path_, follower_dir_.path, families, handles, raw);
  if (!writer && opened.IsInvalidArgument() &&
      opened.ToString().find(kMetaFamily) != std::string::npos)
    throw Error(ErrorCode::InvalidArgument, "'" + path_ + "' is not a hetcache database");
  check_status(opened, "open", path_);
  db_->db.reset(raw);
  db_->vectors = handles[kVectorFamily];
  db_->meta = handles[kMetaFamilyIndex];
  // The open read the MANIFEST and the logs as a catch-up does, with the same gap.
  if (mode_ == OpenMode::Follower) check_status(catch_up_now(), "catch up with its writer", path_);

  // The metadata: written once when the directory is new, checked on every later open.
  std::string stored_dim;
  const rocksdb::Status meta = db_->db->Get(rocksdb::ReadOptions(), db_->meta, "dim", &stored_dim);
  if (meta.IsNotFound()) {
    if (!writer)
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
    if (writer) drop_empty_logs();
  }
  if (writer) RowIds::fill_missing(*db_->db, db_->vectors, db_->meta, path_);
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
    return steady_ms() - last_catch_up_ms_.load(std::memory_order_relaxed) >=
           catch_up_interval_ms_;
  };
  if (due_only && !due()) return false;
  std::lock_guard one_at_a_time(catch_up_mutex_);
  if (due_only && !due()) return false;  // another reader caught up meanwhile
  const rocksdb::SequenceNumber before = db_->db->GetLatestSequenceNumber();
  const std::int64_t started = steady_ms();
  check_status(catch_up_now(), "catch up with its writer", path_);
  last_catch_up_ms_.store(started, std::memory_order_relaxed);
  return db_->db->GetLatestSequenceNumber() != before;
}

// TryCatchUpWithPrimary reads the writer's MANIFEST, then lists and replays its logs. A log the
// writer deletes in between (its memtable flushed into a table the MANIFEST we read does not name
// yet) is skipped, and with it batches committed before the call. The writer records the table in
// the MANIFEST before it deletes the log, so a second pass reads that record: after two passes
// everything committed before the first one began is applied (a log the second pass misses was
// created after the first pass listed the logs, so it holds only later batches). A MANIFEST
// switched or a table deleted mid-read (TryAgain, a missing file) runs the pass again.
rocksdb::Status RocksDbStore::catch_up_now() {
  constexpr int kAttempts = 16;
  rocksdb::Status s;
  for (int attempt = 1, passes = 0; attempt <= kAttempts && passes < 2; ++attempt) {
    s = db_->db->TryCatchUpWithPrimary();
    if (s.ok()) {
      ++passes;
    } else if (s.IsTryAgain() || is_missing_file(s)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(attempt));
    } else {
      return s;
    }
  }
  return s;
}

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
  std::vector<std::int64_t> ids;
  std::vector<float> values(rows * dim_);
  rocksdb::ReadOptions read;
  read.fill_cache = false;  // a scan must not push the hot keys out of the block cache
  // Both families read as of one moment, so every id read belongs to the vectors read: a
  // snapshot, or for a follower (RocksDB has no snapshots there) both iterators made while no
  // catch-up runs.
  const bool follower = mode_ == OpenMode::Follower;
  const rocksdb::Snapshot* snapshot = follower ? nullptr : db_->db->GetSnapshot();
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* s;
    ~Release() {
      if (s) db->ReleaseSnapshot(s);
    }
  } release{db_->db.get(), snapshot};
  read.snapshot = snapshot;
  std::unique_lock no_catch_up(catch_up_mutex_, std::defer_lock);
  if (follower) no_catch_up.lock();
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(read, db_->vectors));
  RowIds::Cursor row_ids(*db_->db, db_->meta, read);
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
  RowIds::lookup(*db_->db, db_->meta, keys, out, path_);
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
  const auto ids_given = row_ids_.assign(*db_->db, db_->meta, keys, batch, path_);
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
