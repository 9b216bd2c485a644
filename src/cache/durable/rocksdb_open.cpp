#include "cache/durable/rocksdb_open.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cache/durable/rocksdb_log.hpp"

namespace hetcache::cache {

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

bool is_missing_file(const rocksdb::Status& s) {
  return s.IsPathNotFound() ||
         (s.IsIOError() && s.ToString().find("No such file") != std::string::npos);
}

// A writer in another process may delete a file the MANIFEST just read still names (a flush or
// compaction finished meanwhile): such an open fails on the missing file and is tried again.
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

std::string make_follower_dir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "hetcache-follower-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw Error(ErrorCode::StoreUnavailable,
                "cannot create a follower's directory '" + pattern + "': " + std::strerror(errno));
  }
  return pattern;
}

FollowerDir::~FollowerDir() {
  std::error_code ignored;
  if (!path.empty()) std::filesystem::remove_all(path, ignored);
}

// TryCatchUpWithPrimary reads the writer's MANIFEST, then lists and replays its logs. A log the
// writer deletes in between (its memtable flushed into a table the MANIFEST we read does not name
// yet) is skipped, and with it batches committed before the call. The writer records the table in
// the MANIFEST before it deletes the log, so a second pass reads that record: after two passes
// everything committed before the first one began is applied (a log the second pass misses was
// created after the first pass listed the logs, so it holds only later batches). A MANIFEST
// switched or a table deleted mid-read (TryAgain, a missing file) runs the pass again.
rocksdb::Status catch_up_with_writer(rocksdb::DB& db) {
  constexpr int kAttempts = 16;
  rocksdb::Status s;
  for (int attempt = 1, passes = 0; attempt <= kAttempts && passes < 2; ++attempt) {
    s = db.TryCatchUpWithPrimary();
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

}  // namespace hetcache::cache
