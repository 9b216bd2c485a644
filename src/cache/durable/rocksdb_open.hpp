// Private: opening RocksDB databases -- RocksDB's statuses as our errors, opens without the lock
// that survive a writer deleting files meanwhile, and whether a writer holds a directory.
#pragma once

#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/status.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hetcache::cache {

// A RocksDB failure as our error: corruption as Corruption (RocksDB's text names the file and
// offset), the directory's lock held elsewhere as "locked", anything else as StoreUnavailable.
Error store_error(const std::string& what, const std::string& path, const rocksdb::Status& s);

// Throws store_error(what, path, s) unless s is ok.
void check_status(const rocksdb::Status& s, const char* what, const std::string& path);
// True when s says the directory's lock is held (by another process, or by this one).
bool is_lock_held(const rocksdb::Status& s);
// True when s says a file is missing (a writer elsewhere deleted it).
bool is_missing_file(const rocksdb::Status& s);
// The "dim" metadata value as written: a positive decimal number; nullopt otherwise.
std::optional<std::size_t> parse_stored_dim(std::string_view text);

// Options for opening an existing database read-only: no lock, no file created.
rocksdb::DBOptions read_only_options();

// True when a process (this one included) holds the lock of the database directory at path.
bool lock_is_held(const std::string& path);

// Opens path without its lock, read-only or (mode Follower) as a secondary instance keeping its
// own files in own_dir; retried when a file the MANIFEST names has just been deleted.
rocksdb::Status open_unlocked(OpenMode mode, const rocksdb::DBOptions& options,
                              const std::string& path, const std::string& own_dir,
                              const std::vector<rocksdb::ColumnFamilyDescriptor>& families,
                              std::vector<rocksdb::ColumnFamilyHandle*>& handles,
                              rocksdb::DB*& raw);

// A Follower's own directory (its LOG), under $TMPDIR; FollowerDir removes it.
std::string make_follower_dir();
struct FollowerDir {
  std::string path;  // empty: none
  FollowerDir() = default;
  FollowerDir(const FollowerDir&) = delete;
  FollowerDir& operator=(const FollowerDir&) = delete;
  ~FollowerDir();
};

// A secondary instance catches up with its writer: every batch committed before the call is
// applied when it returns ok (two passes of TryCatchUpWithPrimary; see the definition).
rocksdb::Status catch_up_with_writer(rocksdb::DB& db);

}  // namespace hetcache::cache
