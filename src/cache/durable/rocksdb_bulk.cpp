// Bulk ingest into a RocksDB collection: the batch sorted by key, encoded on the Cpu tier into
// table files of about kFileBytes each (one task per file), and the files of both families -- the
// vectors, the new row ids with the counter -- added in one IngestExternalFiles call, which RocksDB
// records in one MANIFEST write: a crash before it leaves nothing, after it every file. The files
// are built in a staging directory inside the database (so they are moved by a hard link, not
// copied); a staging directory left by a killed process is removed by the next writer's open.
#include <hetcache/error.hpp>

#include <rocksdb/db.h>
#include <rocksdb/sst_file_writer.h>

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "cache/durable/rocksdb_bulk.hpp"
#include "cache/durable/rocksdb_store.hpp"
#include "cache/durable/value_format.hpp"

namespace hetcache::cache {
namespace {

constexpr std::size_t kFileBytes = std::size_t{64} << 20;  // RocksDB's default target file size
constexpr std::size_t kSortChunk = 65536;                  // keys per parallel sort task
constexpr const char* kStagingPrefix = "hetcache-bulk-";

// A staging directory, removed with whatever is left in it (files not ingested).
struct Staging {
  std::string path;
  ~Staging() {
    std::error_code ignored;
    if (!path.empty()) std::filesystem::remove_all(path, ignored);
  }
};

// Batch positions in ascending key order, each key once (keys must be distinct; sorting is stable
// so a repeated key keeps its last row). Sorted in chunks on the Cpu tier, then merged.
std::vector<std::size_t> key_order(std::span<const std::string_view> keys,
                                   const DurableStore::CpuTier& cpu) {
  const std::size_t n = keys.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  const auto before = [&](std::size_t a, std::size_t b) { return keys[a] < keys[b]; };
  const std::size_t chunk = std::max(kSortChunk, (n + cpu.threads - 1) / cpu.threads);
  cpu.run(n, chunk, [&](std::size_t first, std::size_t count) {
    std::stable_sort(order.begin() + first, order.begin() + first + count, before);
  });
  for (std::size_t width = chunk; width < n; width *= 2) {
    cpu.run(n, 2 * width, [&](std::size_t first, std::size_t count) {
      if (count > width)
        std::inplace_merge(order.begin() + first, order.begin() + first + width,
                           order.begin() + first + count, before);
    });
  }
  // A repeated key: keep its last occurrence.
  std::vector<std::size_t> unique;
  unique.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (i + 1 < n && keys[order[i]] == keys[order[i + 1]]) continue;
    unique.push_back(order[i]);
  }
  return unique;
}

rocksdb::Options family_options(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family) {
  return rocksdb::Options(db.GetDBOptions(), db.GetOptions(family));
}

// A table file open for writing, with direct I/O where the file system allows it: a bulk ingest
// then neither copies its gigabytes through the page cache -- that copy, not the disk, bounded it
// (docs/history.md) -- nor pushes a serving process's pages out. Where the file system refuses
// O_DIRECT (tmpfs before Linux 6.6, some FUSE file systems), buffered, with the pages dropped as
// they are written (RocksDB's default).
std::unique_ptr<rocksdb::SstFileWriter> open_table(const std::string& name,
                                                   const rocksdb::Options& options,
                                                   rocksdb::ColumnFamilyHandle* family,
                                                   const std::string& path) {
  rocksdb::EnvOptions direct;
  direct.use_direct_writes = true;
  auto file = std::make_unique<rocksdb::SstFileWriter>(direct, options, family);
  if (file->Open(name).ok()) return file;
  file = std::make_unique<rocksdb::SstFileWriter>(rocksdb::EnvOptions(), options, family);
  check_status(file->Open(name), "write a table file", path);
  return file;
}

}  // namespace

void remove_bulk_staging(const std::string& path) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
    if (e.path().filename().string().starts_with(kStagingPrefix)) {
      std::error_code ignored;
      std::filesystem::remove_all(e.path(), ignored);
    }
  }
}

void RocksDbStore::put_bulk(std::span<const std::string_view> keys, const float* rows,
                            std::size_t stride, std::int64_t expiry_ms, const CpuTier& cpu) {
  check_writable("ingest");
  if (keys.empty()) return;
  const std::vector<std::size_t> order = key_order(keys, cpu);
  const std::size_t n = order.size();
  std::vector<std::string_view> sorted(n);
  for (std::size_t i = 0; i < n; ++i) sorted[i] = keys[order[i]];

  rocksdb::DB& db = db_->db();
  RowIds::Planned ids = row_ids_.plan(db, meta_, sorted, order, keys.size(), cpu, path_);

  Staging staging;
  {
    std::string pattern = path_ + "/" + kStagingPrefix + "XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      throw Error(ErrorCode::StoreUnavailable, "cannot create a staging directory in '" + path_ +
                                                   "' for a bulk ingest: " + std::strerror(errno));
    }
    staging.path = pattern;
  }
  // Files of about kFileBytes, and at least one per thread once each gets a few thousand rows.
  const std::size_t bytes = value_bytes(value_type_, dim_);
  const std::size_t files = std::max(
      {std::size_t{1}, (n * bytes + kFileBytes - 1) / kFileBytes, std::min(cpu.threads, n / 4096)});
  const std::size_t per_file = (n + files - 1) / files;
  std::vector<std::string> vector_files((n + per_file - 1) / per_file);
  const rocksdb::Options vectors_options = family_options(db, vectors_);
  cpu.run(n, per_file, [&](std::size_t first, std::size_t count) {
    const std::string name = staging.path + "/vectors-" + std::to_string(first / per_file) + ".sst";
    const auto file = open_table(name, vectors_options, vectors_, path_);
    std::string value;
    for (std::size_t i = first; i < first + count; ++i) {
      encode_value(sorted[i], rows + order[i] * stride, dim_, expiry_ms, value, value_type_);
      check_status(file->Put(sorted[i], value), "write a table file", path_);
    }
    check_status(file->Finish(), "write a table file", path_);
    vector_files[first / per_file] = name;
  });

  std::vector<rocksdb::IngestExternalFileArg> args(1);
  args[0].column_family = vectors_;
  args[0].external_files = vector_files;
  {
    const std::string name = staging.path + "/ids.sst";
    const auto file = open_table(name, family_options(db, meta_), meta_, path_);
    if (RowIds::add_records(*file, sorted, ids, path_)) {
      check_status(file->Finish(), "write a table file", path_);
      args.emplace_back();
      args.back().column_family = meta_;
      args.back().external_files = {name};
    }
  }
  for (auto& arg : args) {
    arg.options.move_files = true;            // a hard link: the staging directory is on this disk
    arg.options.write_global_seqno = false;   // the sequence number lives in the MANIFEST
    arg.options.allow_blocking_flush = true;  // a memtable holding these keys is flushed first
  }
#if defined(__SANITIZE_THREAD__)
  std::lock_guard serialised(tsan_write_mutex_);
#endif
  check_status(db.IngestExternalFiles(args), "ingest table files", path_);
}

}  // namespace hetcache::cache
