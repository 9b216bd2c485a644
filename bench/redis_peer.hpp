// Benchmark peer: a real redis-server on loopback (no persistence) and a pipelining hiredis client
// -- pipelined SETs, MGET in pipelined chunks -- holding values in hetcache's value format, so the
// client pays the same decode and checksum as the cache's own stores.
#pragma once

#include <hetcache/hetcache.hpp>

#include <hiredis/hiredis.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cache/durable/value_format.hpp"
#include "support/redis_server.hpp"

namespace hetcache::bench {

class RedisServer {
 public:
  RedisServer() : context_(redisConnect("127.0.0.1", server_.port())) {
    if (context_ == nullptr || context_->err) {
      throw std::runtime_error("cannot connect to redis-server on port " +
                               std::to_string(server_.port()));
    }
  }
  ~RedisServer() { redisFree(context_); }
  redisContext* context() { return context_; }

  void set_batch(const std::vector<std::string>& keys, const std::vector<std::string>& values) {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      redisAppendCommand(context_, "SET %b %b", keys[i].data(), keys[i].size(), values[i].data(),
                         values[i].size());
    }
    for (std::size_t i = 0; i < keys.size(); ++i) consume_reply();
  }
  // MGET in pipelined chunks of 1000 keys; decodes every value into out (checksummed format).
  std::size_t mget_batch(const std::vector<std::string>& keys, MutableMatrixView out) {
    const std::size_t dim = out.dim();
    constexpr std::size_t kChunk = 1000;
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (std::size_t first = 0; first < keys.size(); first += kChunk) {
      const std::size_t n = std::min(kChunk, keys.size() - first);
      argv.assign(1, "MGET");
      lengths.assign(1, 4);
      for (std::size_t i = first; i < first + n; ++i) {
        argv.push_back(keys[i].data());
        lengths.push_back(keys[i].size());
      }
      redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lengths.data());
    }
    std::size_t hits = 0;
    for (std::size_t first = 0; first < keys.size(); first += kChunk) {
      redisReply* reply = nullptr;
      if (redisGetReply(context_, reinterpret_cast<void**>(&reply)) != REDIS_OK || !reply) {
        throw std::runtime_error("redis MGET failed");
      }
      for (std::size_t i = 0; i < reply->elements; ++i) {
        const redisReply* value = reply->element[i];
        if (value->type != REDIS_REPLY_STRING) continue;
        const auto decoded = cache::decode_value(
            keys[first + i], std::string_view(value->str, value->len), dim, out.row(first + i));
        hits += decoded.status == cache::DecodeStatus::Ok ? 1 : 0;
      }
      freeReplyObject(reply);
    }
    return hits;
  }

 private:
  void consume_reply() {
    redisReply* reply = nullptr;
    if (redisGetReply(context_, reinterpret_cast<void**>(&reply)) != REDIS_OK || !reply) {
      throw std::runtime_error("redis reply failed");
    }
    freeReplyObject(reply);
  }

  testing::RedisServerProcess server_;  // started before the client connects
  redisContext* context_ = nullptr;
};

}  // namespace hetcache::bench
