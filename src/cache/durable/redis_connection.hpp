// Private: one hiredis async connection driven by its own event-loop thread.
//
// Callers on any thread (fibers included) submit pipelined requests and get a Future; the loop
// thread sends them, and hiredis reply callbacks hand each reply to the request and fulfil its
// promise when the last reply arrived. hiredis 0.14 has no timeouts of its own, so the loop keeps
// them: a request whose replies are late past command_timeout, or a connect that takes longer than
// connect_timeout, fails every request in flight and drops the connection. With
// RedisOptions::max_in_flight, requests beyond it wait unsent, and one that waits past its
// command_timeout (from submission) fails alone. A lost connection fails its requests; the next
// request connects again. No request ever waits without a deadline.
#pragma once

#include <hetcache/cache.hpp>
#include <hetcache/future.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

struct redisReply;

namespace hetcache::cache {

class RedisConnection {
 public:
  struct Request {
    std::vector<std::vector<std::string>> commands;  // each: command name and arguments
    // Called on the loop thread with reply i (in order); a non-empty return value fails the
    // request with that message (the remaining replies are still consumed).
    std::function<std::string(std::size_t index, const redisReply& reply)> on_reply;
    // When set, receives the text of the first error reply ("MOVED 3999 127.0.0.1:6381"), written
    // before the future fails, so a cluster client can follow a redirection.
    std::shared_ptr<std::string> error_reply;
  };

  // Starts the loop thread; connects lazily, on the first request.
  RedisConnection(const RedisOptions& options, std::string name);
  ~RedisConnection();  // fails what is queued or in flight, then joins the loop thread
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // The future fails with Error(StoreUnavailable) naming the server when Redis cannot be reached,
  // times out, drops the connection, or answers a command with an error.
  Future<void> submit(Request request);

  // The link's round trip as this connection sees it, in us: the shortest time from sending a
  // request to its first reply among the last 64 requests (the shortest, because a request
  // pipelined behind others also waits for them); 0 before the first reply.
  double round_trip_us() const noexcept;
  // Requests submitted and not yet answered (sent or waiting): what a pool balances on.
  std::size_t outstanding() const noexcept;

 private:
  struct Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace hetcache::cache
