#include "cache/durable/redis_store.hpp"

#include <hetcache/error.hpp>

#include <hiredis/hiredis.h>

#include <map>

#include "cache/durable/redis_cluster.hpp"
#include "cache/durable/redis_replies.hpp"
#include "cache/durable/value_format.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace hetcache::cache {
namespace {

std::string hex(unsigned value) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), digits[value % 16]);
    value /= 16;
  } while (value != 0);
  return out;
}

// MATCH patterns treat * ? [ ] \ specially; the prefix must match literally.
std::string glob_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

RedisStore::RedisStore(const RedisOptions& options, std::size_t dim, StorageType value_type)
    : options_(options),
      dim_(dim),
      value_type_(value_type),
      name_(options.host + ":" + std::to_string(options.port)) {
  if (options_.host.empty()) throw Error(ErrorCode::InvalidArgument, "RedisOptions.host is empty");
  if (options_.port <= 0 || options_.port > 65535) {
    throw Error(ErrorCode::InvalidArgument,
                "RedisOptions.port must be in 1..65535, got " + std::to_string(options_.port));
  }
  if (options_.db < 0) {
    throw Error(ErrorCode::InvalidArgument,
                "RedisOptions.db must be >= 0, got " + std::to_string(options_.db));
  }
  if (options_.key_prefix.find_first_of("{}") != std::string::npos) {
    throw Error(ErrorCode::InvalidArgument,
                "RedisOptions.key_prefix must not contain '{' or '}' (they pick the hash slot)");
  }
  if (options_.chunk_keys == 0 || options_.chunk_keys > std::size_t(kMaxReplyElements))
    throw Error(ErrorCode::InvalidArgument, "RedisOptions.chunk_keys must be from 1 to " +
                                                std::to_string(kMaxReplyElements) + ", got " +
                                                std::to_string(options_.chunk_keys));
  if (options_.connections == 0 || options_.connections > 64) {
    throw Error(ErrorCode::InvalidArgument, "RedisOptions.connections must be from 1 to 64, got " +
                                                std::to_string(options_.connections));
  }
  if (options_.connect_timeout.count() <= 0 || options_.command_timeout.count() <= 0) {
    throw Error(ErrorCode::InvalidArgument, "RedisOptions timeouts must be positive");
  }
  if (options_.cluster) {
    if (options_.cluster_hash_tags == 0)
      throw Error(ErrorCode::InvalidArgument,
                  "RedisOptions.cluster needs cluster_hash_tags > 0 (a pipeline of keys must "
                  "stay within one hash slot)");
    if (options_.db != 0)
      throw Error(ErrorCode::InvalidArgument,
                  "RedisOptions.db must be 0 with cluster (Redis Cluster has database 0 only), "
                  "got " +
                      std::to_string(options_.db));
    cluster_ = std::make_unique<RedisCluster>(options_, name_);
  } else {
    for (std::size_t i = 0; i < options_.connections; ++i)
      connections_.push_back(std::make_unique<RedisConnection>(options_, name_));
  }
}

RedisStore::~RedisStore() = default;

RedisConnection& RedisStore::connection() const {
  RedisConnection* best = connections_.front().get();
  for (const auto& c : connections_) {
    if (c->outstanding() < best->outstanding()) best = c.get();
  }
  return *best;
}

double RedisStore::round_trip_us() const noexcept {
  double shortest = 0.0;
  for (const auto& c : connections_) {
    const double rtt = c->round_trip_us();
    if (rtt > 0.0 && (shortest == 0.0 || rtt < shortest)) shortest = rtt;
  }
  return shortest;
}

unsigned RedisStore::tag_of(std::string_view key) const {
  return static_cast<unsigned>(XXH3_64bits(key.data(), key.size()) % options_.cluster_hash_tags);
}

std::string RedisStore::redis_key(std::string_view key) const {
  std::string out = options_.key_prefix;
  if (options_.cluster_hash_tags != 0) {
    out += '{';
    out += hex(tag_of(key));
    out += '}';
  }
  out.append(key);
  return out;
}

std::vector<std::vector<std::size_t>> RedisStore::chunks_of(
    std::span<const std::string_view> keys) const {
  std::vector<std::vector<std::size_t>> chunks;
  if (options_.cluster_hash_tags == 0) {
    for (std::size_t first = 0; first < keys.size(); first += options_.chunk_keys) {
      std::vector<std::size_t>& chunk = chunks.emplace_back();
      for (std::size_t i = first; i < std::min(keys.size(), first + options_.chunk_keys); ++i)
        chunk.push_back(i);
    }
    return chunks;
  }
  std::map<unsigned, std::vector<std::size_t>> by_tag;
  for (std::size_t i = 0; i < keys.size(); ++i) by_tag[tag_of(keys[i])].push_back(i);
  for (auto& [tag, indices] : by_tag) {
    for (std::size_t first = 0; first < indices.size(); first += options_.chunk_keys) {
      chunks.emplace_back(indices.begin() + static_cast<std::ptrdiff_t>(first),
                          indices.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                indices.size(), first + options_.chunk_keys)));
    }
  }
  return chunks;
}

Future<void> RedisStore::get_batch_async(Resources& resources,
                                         std::span<const std::string_view> keys, float* out,
                                         std::size_t stride, std::int64_t now_ms, BatchRead& read) {
  // A cluster follows redirections by waiting and sending again: that runs on the I/O pool.
  if (cluster_) return DurableStore::get_batch_async(resources, keys, out, stride, now_ms, read);
  // hiredis is asynchronous already: no I/O thread is needed, the loop thread answers.
  return start_read(keys, out, stride, now_ms, read);
}

Future<void> RedisStore::start_read(std::span<const std::string_view> keys, float* out,
                                    std::size_t stride, std::int64_t now_ms, BatchRead& read) {
  read.reset(keys.size());
  RedisConnection::Request request;
  auto chunks = std::make_shared<std::vector<std::vector<std::size_t>>>(chunks_of(keys));
  for (const auto& chunk : *chunks) {
    std::vector<std::string>& command = request.commands.emplace_back();
    command.reserve(chunk.size() + 1);
    command.emplace_back("MGET");
    for (const auto i : chunk) command.push_back(redis_key(keys[i]));
  }
  // Runs on the loop thread, while the caller waits on the future (keys, out, read stay valid).
  request.on_reply = [this, chunks, keys, out, stride, now_ms, &read](
                         std::size_t index, const redisReply& reply) -> std::string {
    return read_mget_reply(reply, (*chunks)[index], keys, out, stride, dim_, now_ms, read);
  };
  return connection().submit(std::move(request));
}

void RedisStore::get_batch(std::span<const std::string_view> keys, float* out, std::size_t stride,
                           std::int64_t now_ms, BatchRead& read) {
  if (keys.empty()) {
    read.reset(0);
    return;
  }
  if (!cluster_) {
    start_read(keys, out, stride, now_ms, read).get();
    return;
  }
  read.reset(keys.size());
  const auto chunks = chunks_of(keys);
  std::vector<RedisCluster::SlotRequest> requests(chunks.size());
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    std::vector<std::string>& command = requests[c].request.commands.emplace_back();
    command.emplace_back("MGET");
    for (const auto i : chunks[c]) command.push_back(redis_key(keys[i]));
    requests[c].slot = key_slot(command[1]);
    requests[c].request.on_reply = [&, c](std::size_t, const redisReply& reply) {
      return read_mget_reply(reply, chunks[c], keys, out, stride, dim_, now_ms, read);
    };
  }
  cluster_->run(std::move(requests));
}

void RedisStore::put_batch(std::span<const std::string_view> keys, const float* rows,
                           std::size_t stride, std::int64_t expiry_ms) {
  if (keys.empty()) return;
  const std::int64_t now = now_unix_ms();
  std::string value;
  // One group of commands per chunk (one hash tag each): a standalone server gets them all as one
  // pipeline, a cluster each group on its slot's master.
  std::vector<RedisCluster::SlotRequest> groups;
  for (const auto& chunk : chunks_of(keys)) {
    RedisConnection::Request& group = groups.emplace_back().request;
    for (const auto i : chunk) {
      std::vector<std::string>& command = group.commands.emplace_back();
      if (is_expired(expiry_ms, now)) {  // nothing to keep; an older value must not survive
        command = {"DEL", redis_key(keys[i])};
        continue;
      }
      encode_value(keys[i], rows + i * stride, dim_, expiry_ms, value, value_type_);
      command = {"SET", redis_key(keys[i]), value};
      if (expiry_ms != kNeverExpires) {
        command.emplace_back("PX");
        command.push_back(std::to_string(expiry_ms - now));
      }
    }
    groups.back().slot = key_slot(group.commands.front()[1]);
  }
  if (cluster_) {
    cluster_->run(std::move(groups));
    return;
  }
  RedisConnection::Request pipeline;
  for (auto& group : groups)
    for (auto& command : group.request.commands) pipeline.commands.push_back(std::move(command));
  connection().submit(std::move(pipeline)).get();
}

bool RedisStore::remove(std::string_view key) {
  RedisConnection::Request request;
  request.commands.push_back({"DEL", redis_key(key)});
  bool existed = false;
  request.on_reply = [&existed](std::size_t, const redisReply& reply) -> std::string {
    if (reply.type != REDIS_REPLY_INTEGER) return "DEL answered with an unexpected reply";
    existed = reply.integer > 0;
    return {};
  };
  if (cluster_) {
    std::vector<RedisCluster::SlotRequest> one(1);
    one[0].slot = key_slot(request.commands[0][1]);
    one[0].request = std::move(request);
    cluster_->run(std::move(one));
  } else {
    connection().submit(std::move(request)).get();
  }
  return existed;
}

void RedisStore::clear() {
  // SCAN lists one node's keys: on a cluster, every master is scanned.
  const auto clear_node = [this](RedisConnection& node) {
    const std::string pattern = glob_escape(options_.key_prefix) + "*";
    std::string cursor = "0";
    do {
      RedisConnection::Request scan;
      scan.commands.push_back({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
      std::vector<std::string> found;
      scan.on_reply = [&](std::size_t, const redisReply& reply) -> std::string {
        return read_scan_reply(reply, cursor, found);
      };
      node.submit(std::move(scan)).get();
      if (found.empty()) continue;
      // One key per UNLINK: keys under different hash tags may live on different cluster slots.
      if (!cluster_) {
        RedisConnection::Request unlink;
        for (auto& key : found) unlink.commands.push_back({"UNLINK", std::move(key)});
        node.submit(std::move(unlink)).get();
        continue;
      }
      std::vector<RedisCluster::SlotRequest> unlinks(found.size());
      for (std::size_t i = 0; i < found.size(); ++i) {
        unlinks[i].slot = key_slot(found[i]);
        unlinks[i].request.commands.push_back({"UNLINK", std::move(found[i])});
      }
      cluster_->run(std::move(unlinks));
    } while (cursor != "0");
  };
  if (cluster_)
    cluster_->for_each_master(clear_node);
  else
    clear_node(*connections_.front());
}

std::string RedisStore::probe() {
  if (cluster_) return cluster_->probe();
  RedisConnection::Request ping;
  ping.commands.push_back({"PING"});
  try {
    connection().submit(std::move(ping)).get();
    return {};
  } catch (const Error& e) {
    return e.what();
  }
}

}  // namespace hetcache::cache
