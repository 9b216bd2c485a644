#include "cache/durable/rocksdb_families.hpp"

#include <hetcache/error.hpp>

#include <algorithm>
#include <filesystem>
#include <set>

#include "cache/durable/rocksdb_log.hpp"
#include "cache/durable/rocksdb_store.hpp"

namespace hetcache::cache {
namespace {

constexpr std::string_view kVectorsPrefix = "vectors/", kMetaPrefix = "meta/";

}  // namespace

FamilyNames family_names(std::string_view collection) {
  if (collection == kDefaultCollection) return {rocksdb::kDefaultColumnFamilyName, kMetaFamily};
  return {std::string(kVectorsPrefix) + std::string(collection),
          std::string(kMetaPrefix) + std::string(collection)};
}

void check_collection_name(std::string_view collection) {
  const bool ok = !collection.empty() && collection.size() <= 64 &&
                  std::all_of(collection.begin(), collection.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
                  });
  if (!ok) {
    throw Error(ErrorCode::InvalidArgument,
                "a collection name is 1 to 64 letters, digits, '_', '.' or '-', got '" +
                    std::string(collection.substr(0, 80)) + "'");
  }
}

bool is_meta_family(std::string_view family) {
  return family == kMetaFamily || family.starts_with(kMetaPrefix);
}

std::vector<std::string> collections_in(const std::vector<std::string>& families) {
  const std::set<std::string> present(families.begin(), families.end());
  std::vector<std::string> names;
  if (present.count(rocksdb::kDefaultColumnFamilyName) && present.count(kMetaFamily))
    names.emplace_back(kDefaultCollection);
  for (const auto& family : families) {
    if (!family.starts_with(kVectorsPrefix)) continue;
    const std::string name = family.substr(kVectorsPrefix.size());
    if (present.count(std::string(kMetaPrefix) + name)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> list_families(const std::string& path) {
  if (!std::filesystem::exists(std::filesystem::path(path) / "CURRENT")) return {};
  std::vector<std::string> families;
  check_status(rocksdb::DB::ListColumnFamilies(read_only_options(), path, &families),
               "list collections", path);
  return families;
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& n : names) text += (text.empty() ? "" : ", ") + n;
  return text.empty() ? "none" : text;
}

}  // namespace hetcache::cache
