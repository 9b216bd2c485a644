// Private: a database's collections and the column families that hold them. Each collection is
// a pair of families: its vectors, and its metadata (dimension, dtype, format, row ids). The
// collection "default" is RocksDB's default family and "hetcache_meta" -- the layout of databases
// made before collections existed, which therefore open unchanged; any other collection N is
// "vectors/N" and "meta/N". RocksDB opens a database read-write only with every family it holds,
// so every open lists them and opens them all.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <string>
#include <string_view>
#include <vector>

namespace hetcache::cache {

inline constexpr const char* kDefaultCollection = "default";

struct FamilyNames {
  std::string vectors, meta;
};
FamilyNames family_names(std::string_view collection);

// Throws Error(InvalidArgument) naming the value unless it is 1 to 64 of A-Z a-z 0-9 _ . -
void check_collection_name(std::string_view collection);

// The collections whose two families are both in `families`, sorted.
std::vector<std::string> collections_in(const std::vector<std::string>& families);
bool is_meta_family(std::string_view family);

// The families of the database at path; empty when path holds no database. Throws what
// check_status throws for a database RocksDB cannot read.
std::vector<std::string> list_families(const std::string& path);

// "a, b, c" -- how messages list collections.
std::string joined(const std::vector<std::string>& names);

}  // namespace hetcache::cache
