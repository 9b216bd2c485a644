#include "cache/durable/durable_store.hpp"

#include <hetcache/error.hpp>

#include <string>

#include "cache/durable/value_format.hpp"

namespace hetcache::cache {

Matrix round_as_stored(StorageType type, MatrixView rows) {
  Matrix out(rows.rows(), rows.dim());
  std::string value;
  for (std::size_t r = 0; r < rows.rows(); ++r) {
    encode_value({}, rows.row(r), rows.dim(), kNeverExpires, value, type);
    decode_value({}, value, rows.dim(), out.row(r));
  }
  return out;
}

Future<void> DurableStore::get_batch_async(Resources& resources,
                                           std::span<const std::string_view> keys, float* out,
                                           std::size_t stride, std::int64_t now_ms,
                                           BatchRead& read) {
  return resources.submit_io(
      [this, keys, out, stride, now_ms, &read] { get_batch(keys, out, stride, now_ms, read); });
}

void DurableStore::scan(std::size_t, std::int64_t, const ScanVisit&, std::uint64_t&,
                        std::uint64_t&) {
  throw Error(ErrorCode::Unsupported, name() + " cannot list its keys: scan needs RocksDB");
}

}  // namespace hetcache::cache
