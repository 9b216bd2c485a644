#include "cache/durable/redis_cluster.hpp"

#include <hetcache/error.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include "cache/durable/redis_replies.hpp"

namespace hetcache::cache {
namespace {

constexpr unsigned kSlots = 16384;
constexpr int kAttempts = 5;

std::uint16_t crc16(std::string_view bytes) {
  std::uint16_t crc = 0;
  for (const char c : bytes) {
    crc = static_cast<std::uint16_t>(crc ^ (static_cast<unsigned char>(c) << 8));
    for (int bit = 0; bit < 8; ++bit)
      crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
  }
  return crc;
}

std::string endpoint(const std::string& host, int port) {
  return host + ":" + std::to_string(port);
}

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381": the node named; nullopt otherwise.
std::optional<std::string> redirect_target(std::string_view error, std::string_view kind) {
  if (error.substr(0, kind.size() + 1) != std::string(kind) + " ") return std::nullopt;
  const auto space = error.rfind(' ');
  if (space == std::string_view::npos || space + 1 >= error.size()) return std::nullopt;
  return std::string(error.substr(space + 1));
}

// The request again, each command preceded by ASKING (one ASKING admits one command); replies to
// ASKING are skipped on the way to the request's own on_reply.
RedisConnection::Request asking(const RedisConnection::Request& r) {
  RedisConnection::Request out;
  for (const auto& command : r.commands) {
    out.commands.push_back({"ASKING"});
    out.commands.push_back(command);
  }
  if (r.on_reply)
    out.on_reply = [inner = r.on_reply](std::size_t i, const redisReply& reply) -> std::string {
      return i % 2 == 0 ? std::string() : inner(i / 2, reply);
    };
  return out;
}

}  // namespace

unsigned key_slot(std::string_view key) {
  const auto open = key.find('{');
  if (open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1)
      key = key.substr(open + 1, close - open - 1);
  }
  return crc16(key) % kSlots;
}

RedisCluster::RedisCluster(const RedisOptions& options, std::string name)
    : options_(options), name_(std::move(name)) {}

RedisCluster::~RedisCluster() = default;

RedisConnection& RedisCluster::connection(const std::string& node) {
  std::lock_guard lock(mutex_);
  auto& c = connections_[node];
  if (!c) {
    RedisOptions o = options_;
    const auto colon = node.rfind(':');
    o.host = node.substr(0, colon);
    o.port = std::stoi(node.substr(colon + 1));
    c = std::make_unique<RedisConnection>(o, node);
  }
  return *c;
}

bool RedisCluster::mapped() {
  std::lock_guard lock(mutex_);
  return !owners_.empty();
}

std::string RedisCluster::owner(unsigned slot) {
  std::lock_guard lock(mutex_);
  return owners_.empty() ? std::string() : owners_[slot];
}

void RedisCluster::refresh() {
  std::vector<std::string> nodes = {endpoint(options_.host, options_.port)};
  {
    std::lock_guard lock(mutex_);
    for (const auto& [node, c] : connections_)
      if (node != nodes[0]) nodes.push_back(node);
  }
  std::string why;
  for (const std::string& node : nodes) {
    std::vector<SlotRange> ranges;
    RedisConnection::Request request;
    request.commands.push_back({"CLUSTER", "SLOTS"});
    const std::string host = node.substr(0, node.rfind(':'));
    request.on_reply = [&](std::size_t, const redisReply& reply) {
      return read_cluster_slots(reply, host, ranges);
    };
    try {
      connection(node).submit(std::move(request)).get();
    } catch (const Error& e) {
      why = e.what();
      continue;
    }
    std::vector<std::string> owners(kSlots);
    for (const SlotRange& r : ranges)
      for (int s = r.first; s <= r.last; ++s)
        owners[static_cast<unsigned>(s)] = endpoint(r.host, r.port);
    std::lock_guard lock(mutex_);
    owners_ = std::move(owners);
    return;
  }
  throw Error(ErrorCode::StoreUnavailable,
              "Redis Cluster " + name_ + ": cannot read the slot map (" + why + ")");
}

void RedisCluster::run(std::vector<SlotRequest> requests) {
  if (!mapped()) refresh();
  struct State {
    SlotRequest* request;
    std::string ask;  // node named by ASK, for the next attempt only
  };
  std::vector<State> pending;
  for (auto& r : requests) pending.push_back({&r, {}});
  for (int attempt = 1;; ++attempt) {
    std::vector<Future<void>> futures;
    std::vector<std::shared_ptr<std::string>> replies;
    for (const State& s : pending) {
      const std::string node = s.ask.empty() ? owner(s.request->slot) : s.ask;
      if (node.empty())
        throw Error(
            ErrorCode::StoreUnavailable,
            "Redis Cluster " + name_ + ": no node serves slot " + std::to_string(s.request->slot));
      RedisConnection::Request r = s.ask.empty() ? s.request->request : asking(s.request->request);
      r.error_reply = std::make_shared<std::string>();
      replies.push_back(r.error_reply);
      futures.push_back(connection(node).submit(std::move(r)));
    }
    std::vector<State> again;
    std::optional<Error> failure;
    bool moved = false, pause = false;
    for (std::size_t i = 0; i < futures.size(); ++i) {
      try {
        futures[i].get();
        continue;
      } catch (const Error& e) {
        const std::string& reply = *replies[i];
        State next{pending[i].request, {}};
        if (const auto target = redirect_target(reply, "MOVED")) {
          moved = true;
          std::lock_guard lock(mutex_);
          if (!owners_.empty()) owners_[pending[i].request->slot] = *target;
        } else if (const auto ask = redirect_target(reply, "ASK")) {
          next.ask = *ask;
        } else if (reply.starts_with("TRYAGAIN") || reply.starts_with("CLUSTERDOWN")) {
          pause = true;
        } else if (!failure) {
          failure = e;  // not a redirection: this fails the call, after every reply is in
          continue;
        } else {
          continue;
        }
        again.push_back(next);
        if (attempt == kAttempts && !failure) failure = e;
      }
    }
    if (failure) throw *failure;
    if (again.empty()) return;
    if (moved) refresh();
    if (pause) std::this_thread::sleep_for(std::chrono::milliseconds(20 * attempt));
    pending = std::move(again);
  }
}

void RedisCluster::for_each_master(const std::function<void(RedisConnection&)>& fn) {
  if (!mapped()) refresh();
  std::vector<std::string> masters;
  {
    std::lock_guard lock(mutex_);
    for (const std::string& node : owners_)
      if (!node.empty()) masters.push_back(node);
  }
  std::sort(masters.begin(), masters.end());
  masters.erase(std::unique(masters.begin(), masters.end()), masters.end());
  for (const std::string& node : masters) fn(connection(node));
}

std::string RedisCluster::probe() {
  try {
    refresh();
    return {};
  } catch (const Error& e) {
    return e.what();
  }
}

}  // namespace hetcache::cache
