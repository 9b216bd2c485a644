// Private: what the bulk ingest (rocksdb_bulk.cpp, RocksDbStore::put_bulk) leaves for others.
#pragma once

#include <string>

namespace hetcache::cache {

// Removes the staging directories of bulk ingests in the database directory path: only a writer
// that holds the directory's lock may call it (a staging directory there is then a killed
// process's).
void remove_bulk_staging(const std::string& path);

}  // namespace hetcache::cache
