#include "cache/durable/redis_connection.hpp"
#include "cache/durable/redis_replies.hpp"

#include <hetcache/error.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>

namespace hetcache::cache {
namespace {

using Clock = std::chrono::steady_clock;

struct Pending {
  RedisConnection::Request request;
  Promise<void> promise;
  std::size_t replies = 0;
  std::string error;  // first failure; the request fails with it once every reply is in
  Clock::time_point deadline;
  Clock::time_point submitted;  // its command_timeout counts from here while it waits unsent
  Clock::time_point sent;
};

// The shortest of every kWindow samples: the round trip without the queueing of a pipeline.
class RoundTrip {
 public:
  static constexpr int kWindow = 64;
  void sample(double us) {  // loop thread only
    window_min_ = std::min(window_min_, us);
    if (++in_window_ == kWindow || estimate_.load(std::memory_order_relaxed) == 0.0) {
      estimate_.store(window_min_, std::memory_order_relaxed);
      if (in_window_ == kWindow) {
        in_window_ = 0;
        window_min_ = std::numeric_limits<double>::infinity();
      }
    }
  }
  double estimate() const noexcept { return estimate_.load(std::memory_order_relaxed); }

 private:
  double window_min_ = std::numeric_limits<double>::infinity();
  int in_window_ = 0;
  std::atomic<double> estimate_{0.0};
};

}  // namespace

struct RedisConnection::Loop {
  RedisOptions options;
  std::string name;
  int wake_fd = -1;
  std::thread thread;

  std::mutex queue_mutex;
  std::deque<std::unique_ptr<Pending>> queue;  // submitted, not yet sent
  bool stopping = false;

  // Loop-thread state.
  redisAsyncContext* context = nullptr;
  bool connected = false;
  Clock::time_point connect_deadline;
  bool want_read = false, want_write = false;
  std::deque<std::unique_ptr<Pending>> waiting;    // beyond max_in_flight, not sent yet
  std::deque<std::unique_ptr<Pending>> in_flight;  // sent, in reply order
  std::atomic<std::size_t> outstanding{0};         // submitted, not completed
  std::string lost_reason;                         // why the connection went away
  RoundTrip round_trip;

  Loop(const RedisOptions& opts, std::string server_name)
      : options(opts), name(std::move(server_name)) {
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) {
      throw Error(ErrorCode::Internal,
                  "eventfd for the Redis loop: " + std::string(strerror(errno)));
    }
    thread = std::thread([this] { run(); });
  }

  ~Loop() {
    {
      std::lock_guard lock(queue_mutex);
      stopping = true;
    }
    wake();
    thread.join();
    close(wake_fd);
  }

  void wake() const {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = write(wake_fd, &one, sizeof one);
  }

  Error failure(const std::string& what) const {
    return Error(ErrorCode::StoreUnavailable, "Redis " + name + ": " + what);
  }

  // --- hiredis adapter: hiredis tells us which events it waits for ----------------------------
  static void add_read(void* self) { static_cast<Loop*>(self)->want_read = true; }
  static void del_read(void* self) { static_cast<Loop*>(self)->want_read = false; }
  static void add_write(void* self) { static_cast<Loop*>(self)->want_write = true; }
  static void del_write(void* self) { static_cast<Loop*>(self)->want_write = false; }
  static void cleanup(void* self) {
    auto* loop = static_cast<Loop*>(self);
    loop->want_read = loop->want_write = false;
  }

  static void on_connect(const redisAsyncContext* ac, int status) {
    auto* loop = static_cast<Loop*>(ac->data);
    if (status == REDIS_OK) {
      loop->connected = true;
      return;
    }
    // hiredis frees the context after this callback (and fails its callbacks first).
    loop->lost_reason = std::string("cannot connect: ") + (ac->errstr[0] ? ac->errstr : "error");
    loop->context = nullptr;
    loop->connected = false;
  }

  static void on_disconnect(const redisAsyncContext* ac, int status) {
    auto* loop = static_cast<Loop*>(ac->data);
    if (status != REDIS_OK && loop->lost_reason.empty()) {
      loop->lost_reason =
          std::string("connection lost: ") + (ac->errstr[0] ? ac->errstr : "closed by the server");
    }
    loop->context = nullptr;  // hiredis frees it after this callback
    loop->connected = false;
  }

  static void on_reply(redisAsyncContext* ac, void* raw_reply, void* privdata) {
    auto* loop = static_cast<Loop*>(ac->data);
    auto* pending = static_cast<Pending*>(privdata);
    const std::size_t index = pending->replies++;
    const auto* reply = static_cast<const redisReply*>(raw_reply);
    if (index == 0 && reply != nullptr) {
      loop->round_trip.sample(
          std::chrono::duration<double, std::micro>(Clock::now() - pending->sent).count());
    }
    if (pending->error.empty()) {
      if (reply == nullptr) {
        pending->error =
            loop->lost_reason.empty() ? std::string("connection lost") : loop->lost_reason;
      } else if (reply->type == REDIS_REPLY_ERROR) {
        pending->error = "error reply: " + std::string(reply->str, reply->len);
        if (pending->request.error_reply)
          pending->request.error_reply->assign(reply->str, reply->len);
      } else if (pending->request.on_reply) {
        pending->error = pending->request.on_reply(index, *reply);
      }
    }
    if (pending->replies == pending->request.commands.size()) loop->finish_front(pending);
  }

  // Replies come in order, so the request that just got its last reply is the oldest in flight.
  void finish_front(Pending* pending) {
    if (in_flight.empty() || in_flight.front().get() != pending) return;  // failed already
    std::unique_ptr<Pending> done = std::move(in_flight.front());
    in_flight.pop_front();
    complete(*done);
  }

  void complete(Pending& pending) {
    outstanding.fetch_sub(1, std::memory_order_relaxed);
    if (pending.error.empty()) {
      pending.promise.set_value();
    } else {
      pending.promise.set_exception(std::make_exception_ptr(failure(pending.error)));
    }
  }

  // --- the connection ---------------------------------------------------------------------------
  bool connect() {
    lost_reason.clear();
    context = redisAsyncConnect(options.host.c_str(), options.port);
    if (context == nullptr) {
      lost_reason = "cannot allocate a hiredis context";
      return false;
    }
    if (context->err) {
      lost_reason = std::string("cannot connect: ") + context->errstr;
      redisAsyncFree(context);
      context = nullptr;
      return false;
    }
    limit_reply_sizes(*context->c.reader);
    context->data = this;
    context->ev.data = this;
    context->ev.addRead = add_read;
    context->ev.delRead = del_read;
    context->ev.addWrite = add_write;
    context->ev.delWrite = del_write;
    context->ev.cleanup = cleanup;
    redisAsyncSetConnectCallback(context, on_connect);
    redisAsyncSetDisconnectCallback(context, on_disconnect);
    // hiredis waits for the non-blocking connect to finish by asking for writability.
    want_write = true;
    connect_deadline = Clock::now() + options.connect_timeout;
    // AUTH and SELECT go first on the new connection; their errors fail the request behind them.
    std::vector<std::vector<std::string>> handshake;
    if (!options.password.empty()) handshake.push_back({"AUTH", options.password});
    if (options.db != 0) handshake.push_back({"SELECT", std::to_string(options.db)});
    if (!handshake.empty()) {
      auto pending = std::make_unique<Pending>();
      pending->request.commands = std::move(handshake);
      outstanding.fetch_add(1, std::memory_order_relaxed);  // complete() counts it out
      send(std::move(pending));
    }
    return true;
  }

  // Drops the connection: every request in flight fails with reason.
  void drop(const std::string& reason) {
    if (lost_reason.empty()) lost_reason = reason;
    for (auto& p : in_flight) {
      if (p->error.empty()) p->error = reason;
    }
    if (context != nullptr) {
      redisAsyncContext* ac = context;
      context = nullptr;
      redisAsyncFree(ac);  // calls every pending callback with a null reply
    }
    connected = false;
    want_read = want_write = false;
    fail_in_flight();
  }

  void fail_in_flight() {
    while (!in_flight.empty()) {
      std::unique_ptr<Pending> p = std::move(in_flight.front());
      in_flight.pop_front();
      if (p->error.empty()) p->error = lost_reason.empty() ? "connection lost" : lost_reason;
      complete(*p);
    }
  }

  void send(std::unique_ptr<Pending> pending) {
    pending->sent = Clock::now();
    pending->deadline = pending->sent + options.command_timeout;
    Pending* raw = pending.get();
    in_flight.push_back(std::move(pending));
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& command : raw->request.commands) {
      argv.clear();
      lengths.clear();
      for (const auto& arg : command) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
      }
      if (redisAsyncCommandArgv(context, on_reply, raw, static_cast<int>(argv.size()), argv.data(),
                                lengths.data()) != REDIS_OK) {
        drop("cannot queue a command: " + std::string(context ? context->errstr : "no connection"));
        return;
      }
    }
  }

  // Sends what waits, oldest first, while the in-flight limit allows; fails what waited too long.
  void send_waiting(Clock::time_point now) {
    while (!waiting.empty() && now >= waiting.front()->submitted + options.command_timeout) {
      std::unique_ptr<Pending> p = std::move(waiting.front());
      waiting.pop_front();
      p->error = "no reply within " + std::to_string(options.command_timeout.count()) +
                 " ms (command_timeout): waited behind " + std::to_string(in_flight.size()) +
                 " requests in flight (max_in_flight " + std::to_string(options.max_in_flight) +
                 ")";
      complete(*p);
    }
    while (!waiting.empty() &&
           (options.max_in_flight == 0 || in_flight.size() < options.max_in_flight)) {
      std::unique_ptr<Pending> p = std::move(waiting.front());
      waiting.pop_front();
      start(std::move(p));
    }
  }

  void start(std::unique_ptr<Pending> pending) {
    if (pending->request.commands.empty()) {
      complete(*pending);
      return;
    }
    if (context == nullptr && !connect()) {
      pending->error = lost_reason;
      complete(*pending);
      return;
    }
    send(std::move(pending));
  }

  void run() {
    // A write to a server that went away raises SIGPIPE, whose default action ends the process.
    // This thread does every write of the connection, so it blocks the signal (the write then fails
    // with EPIPE, which hiredis reports as a lost connection) and discards what is left pending.
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
    const timespec no_wait{};
    for (;;) {
      std::deque<std::unique_ptr<Pending>> batch;
      bool stop = false;
      {
        std::lock_guard lock(queue_mutex);
        batch.swap(queue);
        stop = stopping;
      }
      if (stop) {
        for (auto& p : batch) waiting.push_back(std::move(p));
        for (auto& p : waiting) {
          p->error = "the store is closing";
          complete(*p);
        }
        waiting.clear();
        drop("the store is closing");
        return;
      }
      for (auto& p : batch) waiting.push_back(std::move(p));
      send_waiting(Clock::now());

      // Wait for the socket, a new request, or the nearest deadline.
      const Clock::time_point now = Clock::now();
      Clock::time_point deadline = now + std::chrono::seconds(1);
      if (!in_flight.empty()) deadline = std::min(deadline, in_flight.front()->deadline);
      if (!waiting.empty())
        deadline = std::min(deadline, waiting.front()->submitted + options.command_timeout);
      if (context != nullptr && !connected) deadline = std::min(deadline, connect_deadline);
      const auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
      pollfd fds[2] = {{wake_fd, POLLIN, 0}, {-1, 0, 0}};
      nfds_t count = 1;
      if (context != nullptr && (want_read || want_write)) {
        fds[1] = {context->c.fd,
                  static_cast<short>((want_read ? POLLIN : 0) | (want_write ? POLLOUT : 0)), 0};
        count = 2;
      }
      poll(fds, count, static_cast<int>(std::max<long long>(0, wait_ms)));
      if (fds[0].revents & POLLIN) {
        std::uint64_t drained = 0;
        [[maybe_unused]] const auto n = read(wake_fd, &drained, sizeof drained);
      }
      if (count == 2 && context != nullptr) {
        if (fds[1].revents & (POLLIN | POLLERR | POLLHUP)) redisAsyncHandleRead(context);
        if (context != nullptr && (fds[1].revents & POLLOUT)) redisAsyncHandleWrite(context);
      }
      while (sigtimedwait(&pipe_signal, nullptr, &no_wait) > 0) {
      }
      if (context == nullptr) fail_in_flight();  // hiredis dropped the connection
      const Clock::time_point after = Clock::now();
      if (context != nullptr && !connected && after >= connect_deadline) {
        drop("cannot connect: no answer within " + std::to_string(options.connect_timeout.count()) +
             " ms");
      } else if (!in_flight.empty() && after >= in_flight.front()->deadline) {
        drop("no reply within " + std::to_string(options.command_timeout.count()) +
             " ms (command_timeout)");
      }
      send_waiting(after);  // answers made room, or a waiting request ran out of time
    }
  }
};

RedisConnection::RedisConnection(const RedisOptions& options, std::string name)
    : loop_(std::make_unique<Loop>(options, std::move(name))) {}

RedisConnection::~RedisConnection() = default;

double RedisConnection::round_trip_us() const noexcept { return loop_->round_trip.estimate(); }

std::size_t RedisConnection::outstanding() const noexcept {
  return loop_->outstanding.load(std::memory_order_relaxed);
}

Future<void> RedisConnection::submit(Request request) {
  auto pending = std::make_unique<Pending>();
  pending->request = std::move(request);
  pending->submitted = Clock::now();
  Future<void> future = pending->promise.get_future();
  {
    std::lock_guard lock(loop_->queue_mutex);
    if (loop_->stopping) throw loop_->failure("the store is closing");
    loop_->queue.push_back(std::move(pending));
    loop_->outstanding.fetch_add(1, std::memory_order_relaxed);
  }
  loop_->wake();
  return future;
}

}  // namespace hetcache::cache
