#include "cache/durable/rocksdb_database.hpp"

#include <hetcache/error.hpp>

#include <rocksdb/compaction_filter.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>

#include "cache/durable/rocksdb_bulk.hpp"
#include "cache/durable/rocksdb_families.hpp"
#include "cache/durable/rocksdb_open.hpp"
#include "cache/durable/value_format.hpp"
#include "cache/expiry.hpp"

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

// The read-write instances open in this process, by canonical directory.
std::mutex registry_mutex;
std::map<std::string, std::weak_ptr<OpenDatabase>>& registry() {
  static auto* open = new std::map<std::string, std::weak_ptr<OpenDatabase>>;
  return *open;
}

}  // namespace

const rocksdb::CompactionFilter* expiry_filter() {
  static const ExpiryCompactionFilter filter;
  return &filter;
}

void OpenDatabase::open_all(OpenMode mode, const std::string& path, const std::string& own_dir,
                            const rocksdb::DBOptions& db_options, const FamilyOptions& families,
                            std::vector<std::string> names) {
  if (std::find(names.begin(), names.end(), rocksdb::kDefaultColumnFamilyName) == names.end())
    names.emplace_back(rocksdb::kDefaultColumnFamilyName);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : names)
    descriptors.emplace_back(name, is_meta_family(name) ? families.meta : families.vectors);
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status opened =
      mode == OpenMode::ReadWrite
          ? rocksdb::DB::Open(db_options, path, descriptors, &handles_, &raw)
          : open_unlocked(mode, db_options, path, own_dir, descriptors, handles_, raw);
  check_status(opened, "open", path);
  db_.reset(raw);
  names_ = std::move(names);
}

std::shared_ptr<OpenDatabase> OpenDatabase::writer(const std::string& path,
                                                   const std::string& collection,
                                                   const rocksdb::DBOptions& db_options,
                                                   const FamilyOptions& families) {
  const std::string key = std::filesystem::weakly_canonical(path).string();
  std::lock_guard lock(registry_mutex);
  std::shared_ptr<OpenDatabase> open = registry()[key].lock();
  const FamilyNames ours = family_names(collection);
  if (!open) {
    open.reset(new OpenDatabase);
    std::vector<std::string> names = list_families(path);
    for (const auto& family : {ours.vectors, ours.meta})
      if (std::find(names.begin(), names.end(), family) == names.end()) names.push_back(family);
    open->open_all(OpenMode::ReadWrite, path, {}, db_options, families, std::move(names));
    remove_bulk_staging(path);  // this process holds the lock now: any left is a killed one's
    registry()[key] = open;
  } else if (open->writing_.count(collection)) {
    throw Error(ErrorCode::StoreUnavailable, "the database directory '" + path +
                                                 "' is locked: another cache in this process "
                                                 "has its collection '" +
                                                 collection + "' open for writing");
  } else {
    for (const auto& family : {ours.vectors, ours.meta}) {
      if (open->family(family)) continue;
      rocksdb::ColumnFamilyHandle* handle = nullptr;
      check_status(open->db_->CreateColumnFamily(
                       is_meta_family(family) ? families.meta : families.vectors, family, &handle),
                   "create a collection", path);
      open->names_.push_back(family);
      open->handles_.push_back(handle);
    }
  }
  open->writing_.insert(collection);
  return open;
}

std::shared_ptr<OpenDatabase> OpenDatabase::reader(OpenMode mode, const std::string& path,
                                                   const std::string& own_dir,
                                                   const rocksdb::DBOptions& db_options,
                                                   const FamilyOptions& families) {
  std::shared_ptr<OpenDatabase> open(new OpenDatabase);
  open->open_all(mode, path, own_dir, db_options, families, list_families(path));
  return open;
}

void OpenDatabase::release(const std::string& collection) {
  std::lock_guard lock(registry_mutex);
  writing_.erase(collection);
}

rocksdb::ColumnFamilyHandle* OpenDatabase::family(const std::string& name) const {
  for (std::size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return handles_[i];
  return nullptr;
}

OpenDatabase::~OpenDatabase() {
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  // Close flushes nothing extra (the WAL already holds every write); its status only matters to
  // callers who could act on it, and a destructor cannot.
  db_->Close().PermitUncheckedError();
}

}  // namespace hetcache::cache
