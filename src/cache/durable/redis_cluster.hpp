// Private: a Redis Cluster, reached through one connection per master (RedisConnection each).
//
// hiredis routes nothing, so this does: the slot map is read from the cluster (CLUSTER SLOTS) on
// first use and again after a MOVED reply; every request -- a pipeline whose keys share one hash
// slot, as the store builds them -- goes to the master that serves its slot; MOVED, ASK (sent
// again with ASKING to the node named) and TRYAGAIN / CLUSTERDOWN (retried after a pause) are
// followed up to four times before the request fails with the server's answer.
#pragma once

#include <hetcache/cache.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cache/durable/redis_connection.hpp"

namespace hetcache::cache {

// The hash slot of a key as Redis Cluster computes it: CRC16 (XMODEM) of the key, or of the text
// between its first '{' and the next '}' when that is not empty, modulo 16384.
unsigned key_slot(std::string_view key);

class RedisCluster {
 public:
  // options.host / port: any node of the cluster (the map names the others).
  RedisCluster(const RedisOptions& options, std::string name);
  ~RedisCluster();
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  struct SlotRequest {
    unsigned slot = 0;
    RedisConnection::Request request;
  };
  // Runs every request on its slot's master, concurrently, and waits for all of them. Throws
  // Error(StoreUnavailable) with the first failure that is not a redirection, or the last one
  // when redirections did not settle.
  void run(std::vector<SlotRequest> requests);
  // fn on a connection to every master of the current map (for SCAN, which lists one node).
  void for_each_master(const std::function<void(RedisConnection&)>& fn);
  // "" when the slot map can be read, else why not.
  std::string probe();

 private:
  // Reads the slot map from the first node that answers; throws when none does.
  void refresh();
  RedisConnection& connection(const std::string& endpoint);
  bool mapped();
  std::string owner(unsigned slot);

  RedisOptions options_;
  std::string name_;
  std::mutex mutex_;
  std::vector<std::string> owners_;  // endpoint ("host:port") per slot; empty until read
  std::map<std::string, std::unique_ptr<RedisConnection>> connections_;
};

}  // namespace hetcache::cache
