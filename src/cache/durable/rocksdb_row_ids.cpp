#include "cache/durable/rocksdb_row_ids.hpp"

#include <hetcache/error.hpp>

#include <cstring>
#include <unordered_set>
#include <vector>

#include "cache/durable/rocksdb_store.hpp"

namespace hetcache::cache {
namespace {

constexpr std::string_view kIdPrefix = "id/";
constexpr const char* kNextId = "next_id";
constexpr std::size_t kLookupChunk = 4096;  // keys per MultiGet of a bulk ingest's lookups

std::string encode_id(std::int64_t id) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((std::uint64_t(id) >> (8 * i)) & 0xFF);
  return bytes;
}

// -1 for anything that is not 8 bytes holding a non-negative id.
std::int64_t decode_id(std::string_view bytes) {
  if (bytes.size() != 8) return -1;
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  return v > std::uint64_t(INT64_MAX) ? -1 : std::int64_t(v);
}

// The counter; nullopt when the database has none.
std::optional<std::int64_t> read_next(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta,
                                      const std::string& path) {
  std::string bytes;
  const rocksdb::Status s = db.Get(rocksdb::ReadOptions(), meta, kNextId, &bytes);
  if (s.IsNotFound()) return std::nullopt;
  check_status(s, "read metadata", path);
  const std::int64_t next = decode_id(bytes);
  if (next < 0)
    throw Error(ErrorCode::Corruption, "the database '" + path + "' records an invalid next_id");
  return next;
}

}  // namespace

std::string RowIds::id_key(std::string_view key) {
  std::string k(kIdPrefix);
  k.append(key);
  return k;
}

std::unique_lock<std::mutex> RowIds::assign(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta,
                                            std::span<const std::string_view> keys,
                                            rocksdb::WriteBatch& batch, const std::string& path) {
  std::unique_lock lock(mutex_);
  std::vector<std::int64_t> held(keys.size());
  lookup(db, meta, keys, held.data(), path);
  std::int64_t next = read_next(db, meta, path).value_or(0);
  const std::int64_t first = next;
  std::unordered_set<std::string_view> given;  // this batch's new keys
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (held[i] >= 0 || !given.insert(keys[i]).second) continue;
    check_status(batch.Put(meta, id_key(keys[i]), encode_id(next)), "write", path);
    ++next;
  }
  if (next != first) check_status(batch.Put(meta, kNextId, encode_id(next)), "write", path);
  return lock;
}

RowIds::Planned RowIds::plan(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta,
                             std::span<const std::string_view> keys,
                             std::span<const std::size_t> input_index, std::size_t batch_rows,
                             const DurableStore::CpuTier& cpu, const std::string& path) {
  Planned p;
  p.lock = std::unique_lock(mutex_);
  const std::size_t n = keys.size();
  p.ids.assign(n, -1);
  p.fresh.assign(n, 0);
  cpu.run(n, kLookupChunk, [&](std::size_t first, std::size_t count) {
    lookup(db, meta, keys.subspan(first, count), p.ids.data() + first, path);
  });
  p.next = read_next(db, meta, path).value_or(0);
  constexpr std::size_t kNone = ~std::size_t{0};
  std::vector<std::size_t> at(batch_rows, kNone);  // batch position -> index in keys
  for (std::size_t i = 0; i < n; ++i) at[input_index[i]] = i;
  for (const std::size_t i : at) {
    if (i == kNone || p.ids[i] >= 0) continue;
    p.ids[i] = p.next++;
    p.fresh[i] = 1;
  }
  return p;
}

bool RowIds::add_records(rocksdb::SstFileWriter& file, std::span<const std::string_view> keys,
                         const Planned& plan, const std::string& path) {
  bool any = false;
  std::string record;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (!plan.fresh[i]) continue;
    record.assign(kIdPrefix);
    record.append(keys[i]);
    check_status(file.Put(record, encode_id(plan.ids[i])), "write a table file", path);
    any = true;
  }
  if (any) check_status(file.Put(kNextId, encode_id(plan.next)), "write a table file", path);
  return any;
}

void RowIds::fill_missing(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* vectors,
                          rocksdb::ColumnFamilyHandle* meta, const std::string& path) {
  if (read_next(db, meta, path)) return;
  // The largest id held, so the new ones come after it.
  std::int64_t next = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), meta));
    for (it->Seek(std::string(kIdPrefix)); it->Valid() && it->key().starts_with(kIdPrefix);
         it->Next())
      next = std::max(next, decode_id(it->value().ToStringView()) + 1);
    check_status(it->status(), "scan", path);
  }
  rocksdb::ReadOptions read;
  read.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(read, vectors));
  Cursor ids(db, meta, read);
  rocksdb::WriteBatch batch;
  const auto flush = [&] {
    check_status(batch.Put(meta, kNextId, encode_id(next)), "write", path);
    check_status(db.Write(rocksdb::WriteOptions(), &batch), "write", path);
    batch.Clear();
  };
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view key = it->key().ToStringView();
    if (ids.id_of(key) >= 0) continue;
    check_status(batch.Put(meta, id_key(key), encode_id(next++)), "write", path);
    if (batch.Count() >= 65536) flush();
  }
  check_status(it->status(), "scan", path);
  check_status(ids.status(), "scan", path);
  flush();  // the counter last: an interrupted fill runs again at the next open
}

void RowIds::lookup(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta,
                    std::span<const std::string_view> keys, std::int64_t* out,
                    const std::string& path) {
  const std::size_t n = keys.size();
  if (n == 0) return;
  std::vector<std::string> id_keys;
  id_keys.reserve(n);
  for (const auto key : keys) id_keys.push_back(id_key(key));
  std::vector<rocksdb::Slice> slices(id_keys.begin(), id_keys.end());
  std::vector<rocksdb::PinnableSlice> values(n);
  std::vector<rocksdb::Status> statuses(n);
  db.MultiGet(rocksdb::ReadOptions(), meta, n, slices.data(), values.data(), statuses.data());
  for (std::size_t i = 0; i < n; ++i) {
    if (!statuses[i].ok() && !statuses[i].IsNotFound()) check_status(statuses[i], "read", path);
    out[i] = statuses[i].ok() ? decode_id(values[i].ToStringView()) : -1;
  }
}

RowIds::Cursor::Cursor(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta,
                       const rocksdb::ReadOptions& read)
    : it_(db.NewIterator(read, meta)) {
  it_->Seek(std::string(kIdPrefix));
}

RowIds::Cursor::~Cursor() = default;

std::int64_t RowIds::Cursor::id_of(std::string_view key) {
  wanted_.assign(kIdPrefix);
  wanted_.append(key);
  const rocksdb::Slice wanted(wanted_);
  while (it_->Valid() && it_->key().compare(wanted) < 0) it_->Next();
  if (!it_->Valid() || it_->key().compare(wanted) != 0) return -1;
  return decode_id(it_->value().ToStringView());
}

rocksdb::Status RowIds::Cursor::status() const { return it_->status(); }

}  // namespace hetcache::cache
