#include "cache/durable/durable_store.hpp"

#include <hetcache/error.hpp>

namespace hetcache::cache {

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
