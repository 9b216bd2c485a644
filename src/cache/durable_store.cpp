#include "cache/durable_store.hpp"

#include <hetcache/error.hpp>

#include "cache/value_format.hpp"

namespace hetcache::cache {

void DurableStore::BatchRead::reset(std::size_t n) {
  results.assign(n, ReadResult::Missing);
  expiry_ms.assign(n, 0);
  reasons.assign(n, {});
}

void DurableStore::BatchRead::classify(std::size_t i, std::string_view key, std::string_view stored,
                                       std::size_t dim, float* out, std::int64_t now_ms) {
  const DecodedValue decoded = decode_value(key, stored, dim, out);
  if (decoded.status != DecodeStatus::Ok) {
    results[i] = ReadResult::Corrupt;
    reasons[i] = decoded.reason;
  } else if (is_expired(decoded.expiry_ms, now_ms)) {
    results[i] = ReadResult::Expired;
  } else {
    results[i] = ReadResult::Found;
    expiry_ms[i] = decoded.expiry_ms;
  }
}

Future<void> DurableStore::get_batch_async(Runtime& runtime, std::span<const std::string_view> keys,
                                           float* out, std::size_t stride, std::int64_t now_ms,
                                           BatchRead& read) {
  return runtime.submit_io(
      [this, keys, out, stride, now_ms, &read] { get_batch(keys, out, stride, now_ms, read); });
}

void DurableStore::scan(std::size_t, std::int64_t, const ScanVisit&, std::uint64_t&,
                        std::uint64_t&) {
  throw Error(ErrorCode::Unsupported, name() + " cannot list its keys: scan needs RocksDB");
}

}  // namespace hetcache::cache
