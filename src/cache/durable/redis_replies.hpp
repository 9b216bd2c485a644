// Private: what the Redis store makes of a server's replies -- the bytes a network peer sends,
// parsed by hiredis into redisReply trees. Every reply shape is checked before it is used: a reply
// of the wrong shape is an error message (the batch fails), a value that is not ours is Corrupt;
// nothing here trusts a length, a type or an element count. Kept apart so a fuzzer can feed it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cache/durable/durable_store.hpp"

struct redisReply;
struct redisReader;

namespace hetcache::cache {

// The most elements one reply array may have: far above any reply we ask for (an MGET of
// RedisOptions::chunk_keys keys, a SCAN of COUNT 1000), far below what exhausts memory -- hiredis
// 0.14 allocates an array as soon as it reads its count, so "*555555550" alone asked for 4.4 GB.
inline constexpr int kMaxReplyElements = 1 << 20;

// Makes `reader` refuse (as a protocol error, which fails the connection's requests) any array
// announcing more than kMaxReplyElements elements.
void limit_reply_sizes(redisReader& reader);

// An MGET reply for the keys keys[chunk[0]], keys[chunk[1]], ...: each found value is decoded into
// out + i * stride (dim floats) and recorded in read. Returns "" or what was wrong with the reply.
std::string read_mget_reply(const redisReply& reply, std::span<const std::size_t> chunk,
                            std::span<const std::string_view> keys, float* out, std::size_t stride,
                            std::size_t dim, std::int64_t now_ms, DurableStore::BatchRead& read);

// A SCAN reply: the next cursor and the keys found. Returns "" or what was wrong with the reply.
std::string read_scan_reply(const redisReply& reply, std::string& cursor,
                            std::vector<std::string>& found);

// One row of CLUSTER SLOTS: slots [first, last] are served by the master at host:port.
struct SlotRange {
  int first = 0, last = 0;
  std::string host;
  int port = 0;
};

// A CLUSTER SLOTS reply: [[first, last, [host, port, id, ...], replicas...], ...]. An empty host
// means the node that answered (`asked_host`). Returns "" or what was wrong with the reply
// (ranges outside 0..16383, a port outside 1..65535, a malformed row).
std::string read_cluster_slots(const redisReply& reply, const std::string& asked_host,
                               std::vector<SlotRange>& ranges);

}  // namespace hetcache::cache
