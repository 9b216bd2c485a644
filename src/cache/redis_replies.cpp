#include "cache/redis_replies.hpp"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

namespace hetcache::cache {
namespace {

// hiredis' own functions, with createArray wrapped; filled from the first reader limited (every
// reader of a process gets the same defaults).
redisReplyObjectFunctions limited_functions;
void* (*default_create_array)(const redisReadTask*, int) = nullptr;

void* create_limited_array(const redisReadTask* task, int elements) {
  if (elements > kMaxReplyElements) return nullptr;  // hiredis reports it as out of memory
  return default_create_array(task, elements);
}

}  // namespace

void limit_reply_sizes(redisReader& reader) {
  static const bool ready = [&reader] {
    limited_functions = *reader.fn;
    default_create_array = limited_functions.createArray;
    limited_functions.createArray = create_limited_array;
    return true;
  }();
  (void)ready;
  reader.fn = &limited_functions;
}

std::string read_mget_reply(const redisReply& reply, std::span<const std::size_t> chunk,
                            std::span<const std::string_view> keys, float* out, std::size_t stride,
                            std::size_t dim, std::int64_t now_ms, DurableStore::BatchRead& read) {
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != chunk.size())
    return "MGET answered with an unexpected reply";
  for (std::size_t j = 0; j < chunk.size(); ++j) {
    const redisReply* value = reply.element[j];
    if (value == nullptr || value->type == REDIS_REPLY_NIL) continue;
    const std::size_t i = chunk[j];
    if (value->type != REDIS_REPLY_STRING) {
      read.results[i] = DurableStore::ReadResult::Corrupt;
      read.reasons[i] = "not a string value";
      continue;
    }
    read.classify(i, keys[i], std::string_view(value->str, value->len), dim, out + i * stride,
                  now_ms);
  }
  return {};
}

std::string read_scan_reply(const redisReply& reply, std::string& cursor,
                            std::vector<std::string>& found) {
  const auto is_string = [](const redisReply* r) {
    return r != nullptr && r->type == REDIS_REPLY_STRING;
  };
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 2 || !is_string(reply.element[0]) ||
      reply.element[1] == nullptr || reply.element[1]->type != REDIS_REPLY_ARRAY)
    return "SCAN answered with an unexpected reply";
  const redisReply* keys = reply.element[1];
  for (std::size_t i = 0; i < keys->elements; ++i)
    if (!is_string(keys->element[i])) return "SCAN answered with a key that is not a string";
  cursor.assign(reply.element[0]->str, reply.element[0]->len);
  for (std::size_t i = 0; i < keys->elements; ++i)
    found.emplace_back(keys->element[i]->str, keys->element[i]->len);
  return {};
}

}  // namespace hetcache::cache
