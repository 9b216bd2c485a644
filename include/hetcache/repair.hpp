#pragma once
// Salvaging a damaged hetcache RocksDB database: RocksDB's own repair (which rebuilds the manifest
// and sets aside table files it cannot read whole), then every entry of those set-aside tables
// read back one by one and kept when its checksum verifies, and every value of the database
// verified, the corrupt ones deleted. What could not be saved is counted, never guessed.

#include <cstdint>
#include <string>
#include <vector>

namespace hetcache {

struct RepairReport {
  // Before: whether the database opened and how many live vectors a full scan read. A scan that
  // failed part-way counts what it read before the failure; `before` says what happened.
  bool opened_before = false;
  std::uint64_t vectors_before = 0;
  std::string before;
  // Table files RocksDB's repair could not read whole; it moves them to <path>/lost/.
  std::uint64_t tables_set_aside = 0;
  // Vectors read back out of those tables with their checksum verified and stored again (a key
  // the repaired database already holds keeps that value).
  std::uint64_t salvaged = 0;
  // Entries those tables list (in their properties) that could not be read back verified; a table
  // whose properties are unreadable adds nothing here and a note says so.
  std::uint64_t unrecoverable = 0;
  // Values in the repaired database that failed their checksum, deleted.
  std::uint64_t corrupt_removed = 0;
  // After: live and expired vectors of the repaired database, all verified.
  std::uint64_t vectors_after = 0, expired_after = 0;
  std::vector<std::string> notes;  // one line per table set aside, and anything unusual
};

// Repairs the hetcache database in the directory `rocksdb_path` (no process may have it open).
// Throws Error: InvalidArgument when the directory holds no RocksDB files, StoreUnavailable when
// it is locked or RocksDB's repair fails, Corruption when no vector dimension can be recovered.
RepairReport repair_database(const std::string& rocksdb_path);

}  // namespace hetcache
