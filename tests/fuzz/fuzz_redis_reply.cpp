// Any bytes as a Redis server's answer: hiredis parses them (RESP2/RESP3), and each complete reply
// goes to the MGET, SCAN and CLUSTER SLOTS readers, which must accept a well-formed reply, refuse a malformed one
// with a message, and never trust a type, length or element count.
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "cache/durable/redis_replies.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  redisReader* reader = redisReaderCreate();
  if (reader == nullptr) return 0;
  hetcache::cache::limit_reply_sizes(*reader);  // as every connection's reader is
  redisReaderFeed(reader, reinterpret_cast<const char*>(data), size);
  constexpr std::size_t kDim = 4;
  const std::vector<std::string> key_text = {"a", "b", "c", "d"};
  const std::vector<std::string_view> keys(key_text.begin(), key_text.end());
  for (int replies = 0; replies < 64; ++replies) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader, &raw) != REDIS_OK || raw == nullptr) break;
    const auto* reply = static_cast<const redisReply*>(raw);
    for (std::size_t n = 0; n <= keys.size(); ++n) {
      std::vector<std::size_t> chunk;
      for (std::size_t i = 0; i < n; ++i) chunk.push_back(i);
      hetcache::cache::DurableStore::BatchRead read;
      read.reset(keys.size());
      std::vector<float> out(keys.size() * kDim);
      const std::string error =
          hetcache::cache::read_mget_reply(*reply, chunk, keys, out.data(), kDim, kDim, 0, read);
      if (error.empty() && (reply->type != REDIS_REPLY_ARRAY || reply->elements != n)) std::abort();
    }
    std::vector<hetcache::cache::SlotRange> ranges;
    if (hetcache::cache::read_cluster_slots(*reply, "asked", ranges).empty()) {
      for (const auto& r : ranges)
        if (r.first < 0 || r.last > 16383 || r.first > r.last || r.port < 1 || r.port > 65535 ||
            r.host.empty())
          std::abort();
    }
    std::string cursor = "unchanged";
    std::vector<std::string> found;
    const std::string error = hetcache::cache::read_scan_reply(*reply, cursor, found);
    if (!error.empty() && (cursor != "unchanged" || !found.empty())) std::abort();
    freeReplyObject(raw);
  }
  redisReaderFree(reader);
  return 0;
}
