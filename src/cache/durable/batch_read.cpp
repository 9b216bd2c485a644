// DurableStore::BatchRead: what a batch read made of each stored value (apart from the stores, so
// the reply fuzzer builds it without the fiber pools).
#include "cache/durable/durable_store.hpp"
#include "cache/durable/value_format.hpp"

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

}  // namespace hetcache::cache
