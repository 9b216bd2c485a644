#include "cache/durable/redis_replies.hpp"

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

std::string read_cluster_slots(const redisReply& reply, const std::string& asked_host,
                               std::vector<SlotRange>& ranges) {
  const auto bad = [] { return std::string("CLUSTER SLOTS answered with an unexpected reply"); };
  if (reply.type != REDIS_REPLY_ARRAY) return bad();
  ranges.clear();
  for (std::size_t i = 0; i < reply.elements; ++i) {
    const redisReply* row = reply.element[i];
    if (row == nullptr || row->type != REDIS_REPLY_ARRAY || row->elements < 3) return bad();
    const redisReply* first = row->element[0];
    const redisReply* last = row->element[1];
    const redisReply* master = row->element[2];
    if (first == nullptr || last == nullptr || master == nullptr ||
        first->type != REDIS_REPLY_INTEGER || last->type != REDIS_REPLY_INTEGER ||
        master->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
        master->element[0] == nullptr || master->element[0]->type != REDIS_REPLY_STRING ||
        master->element[1] == nullptr || master->element[1]->type != REDIS_REPLY_INTEGER)
      return bad();
    if (first->integer < 0 || last->integer > 16383 || first->integer > last->integer)
      return "CLUSTER SLOTS named slots outside 0..16383";
    const long long port = master->element[1]->integer;
    if (port < 1 || port > 65535) return "CLUSTER SLOTS named port " + std::to_string(port);
    SlotRange r;
    r.first = static_cast<int>(first->integer);
    r.last = static_cast<int>(last->integer);
    r.host.assign(master->element[0]->str, master->element[0]->len);
    if (r.host.empty() || r.host == "?") r.host = asked_host;
    r.port = static_cast<int>(port);
    ranges.push_back(std::move(r));
  }
  return {};
}

}  // namespace hetcache::cache
