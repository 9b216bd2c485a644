// Private: RocksDB's info log for our databases. RocksDB's own file logger asserts (and Debian's
// librocksdb keeps asserts on) when a write to LOG fails -- a full disk aborted the process while
// a database was being created -- and it leaves a LOG.old.<time> behind on every open. Ours
// writes warnings and errors only, ignores its own write failures (the operation that hit the
// full disk reports it), and keeps one LOG of at most 1 MiB plus one LOG.old.
#pragma once

#include <rocksdb/env.h>

#include <memory>
#include <string>

namespace hetcache::cache {

// A logger appending to <dir>/LOG for a database opened read-write.
std::shared_ptr<rocksdb::Logger> make_database_log(const std::string& dir);
// A logger that drops everything, for read-only opens (which must create no file).
std::shared_ptr<rocksdb::Logger> make_silent_log();

}  // namespace hetcache::cache
