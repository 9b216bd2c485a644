// A real Redis Cluster on loopback for tests: three redis-server masters in cluster mode, every
// slot assigned by `redis-cli --cluster create`, ready (cluster_state:ok on every node) when the
// constructor returns; stopped, with their files, in the destructor. reshard() moves slots and
// their keys between masters with `redis-cli --cluster reshard`, as an operator would.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_server.hpp"

namespace hetcache::testing {

class RedisClusterProcesses {
 public:
  explicit RedisClusterProcesses(int masters = 3) {
    char pattern[] = "/tmp/hetcache-cluster-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    std::string nodes;
    for (int i = 0; i < masters; ++i) {
      const std::string bus = std::to_string(RedisServerProcess::free_port());
      nodes_.push_back(std::make_unique<RedisServerProcess>(
          std::vector<std::string>{"--cluster-enabled", "yes", "--cluster-config-file",
                                   dir_ + "/nodes-" + std::to_string(i) + ".conf", "--cluster-port",
                                   bus, "--dir", dir_, "--cluster-node-timeout", "3000"}));
      nodes += " 127.0.0.1:" + std::to_string(nodes_.back()->port());
    }
    shell("redis-cli --cluster create" + nodes + " --cluster-replicas 0 --cluster-yes");
    wait_until_ok();
  }
  ~RedisClusterProcesses() {
    nodes_.clear();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  RedisClusterProcesses(const RedisClusterProcesses&) = delete;
  RedisClusterProcesses& operator=(const RedisClusterProcesses&) = delete;

  std::size_t size() const { return nodes_.size(); }
  int port(std::size_t i) const { return nodes_[i]->port(); }

  // The string answer of a command sent to node i ("" for another reply type).
  std::string ask(std::size_t i, const std::string& command) const {
    redisContext* c = redisConnect("127.0.0.1", port(i));
    std::string out;
    if (c != nullptr && c->err == 0) {
      auto* reply = static_cast<redisReply*>(redisCommand(c, command.c_str()));
      if (reply != nullptr &&
          (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS ||
           reply->type == REDIS_REPLY_ERROR))
        out.assign(reply->str, reply->len);
      if (reply != nullptr && reply->type == REDIS_REPLY_INTEGER)
        out = std::to_string(reply->integer);
      if (reply) freeReplyObject(reply);
    }
    if (c) redisFree(c);
    return out;
  }
  long long keys_on(std::size_t i) const { return std::stoll(ask(i, "DBSIZE")); }

  // Moves `slots` slots, with their keys, from master `from` to master `to`.
  void reshard(std::size_t from, std::size_t to, int slots) {
    shell("redis-cli --cluster reshard 127.0.0.1:" + std::to_string(port(from)) +
          " --cluster-from " + ask(from, "CLUSTER MYID") + " --cluster-to " +
          ask(to, "CLUSTER MYID") + " --cluster-slots " + std::to_string(slots) + " --cluster-yes");
    wait_until_ok();
  }

 private:
  static void shell(const std::string& command) {
    if (std::system((command + " >/dev/null 2>&1").c_str()) != 0)
      throw std::runtime_error("failed: " + command + " (redis-cli comes with redis-server)");
  }
  void wait_until_ok() const {
    for (int attempt = 0; attempt < 400; ++attempt) {
      bool ok = true;
      for (std::size_t i = 0; i < nodes_.size(); ++i)
        ok = ok && ask(i, "CLUSTER INFO").find("cluster_state:ok") != std::string::npos;
      if (ok) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    throw std::runtime_error("the test cluster did not reach cluster_state:ok");
  }

  std::string dir_;
  std::vector<std::unique_ptr<RedisServerProcess>> nodes_;
};

}  // namespace hetcache::testing
