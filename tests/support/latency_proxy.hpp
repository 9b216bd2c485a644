// Test tooling, not the library: a TCP proxy on a free loopback port that forwards to a server on
// another loopback port (a real redis-server) and holds every byte for a set one-way delay in each
// direction, so tests and benchmarks see the round trips of a server across a network (0.1 - 2 ms
// in one datacenter) on a machine without netem. drop_connections() closes every connection at
// once and turns new ones away for a while (a partition, or a server restart, as the client sees
// it).
//
// One thread runs everything with ppoll (nanosecond timeouts, so sub-millisecond delays hold);
// bytes keep their order per direction. The proxy's own cost is one extra read and write per
// message on a loopback socket.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace hetcache::testing {

class LatencyProxy {
 public:
  using Clock = std::chrono::steady_clock;

  // Forwards 127.0.0.1:port() to 127.0.0.1:upstream_port, each direction delayed by one_way (a
  // round trip gains twice that).
  LatencyProxy(int upstream_port, std::chrono::microseconds one_way)
      : upstream_port_(upstream_port), delay_(one_way) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error("LatencyProxy: socket: " + errno_text());
    const int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr = loopback(0);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, 1024) != 0) {
      close(listen_fd_);
      throw std::runtime_error("LatencyProxy: bind/listen: " + errno_text());
    }
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    thread_ = std::thread([this] { run(); });
  }

  ~LatencyProxy() {
    stopping_ = true;
    wake();
    thread_.join();
    for (auto& link : links_) close_link(link);
    close(listen_fd_);
    close(wake_fd_);
  }
  LatencyProxy(const LatencyProxy&) = delete;
  LatencyProxy& operator=(const LatencyProxy&) = delete;

  int port() const noexcept { return port_; }

  // Bytes read from now on are held for `one_way` (bytes already held keep their time).
  void set_delay(std::chrono::microseconds one_way) {
    std::lock_guard lock(mutex_);
    delay_ = one_way;
  }

  // Closes every open connection now (clients read EOF or a reset) and accepts and closes at once
  // every connection made in the next `outage`; after it, connections forward again.
  void drop_connections(std::chrono::milliseconds outage) {
    {
      std::lock_guard lock(mutex_);
      drop_requested_ = true;
      refuse_until_ = Clock::now() + outage;
    }
    wake();
  }

  std::size_t connections_accepted() const noexcept { return accepted_.load(); }
  std::size_t connections_refused() const noexcept { return refused_.load(); }

 private:
  struct Chunk {
    Clock::time_point due;
    std::string bytes;
    std::size_t sent = 0;
  };
  struct Direction {
    int to = -1;              // the socket the bytes are written to
    std::deque<Chunk> queue;  // read, waiting for their time or for room in the socket
  };
  struct Link {
    int client = -1, server = -1;
    Direction to_server, to_client;  // to_server.to == server, to_client.to == client
  };

  static std::string errno_text() { return std::strerror(errno); }
  static sockaddr_in loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
  }
  void wake() const {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = write(wake_fd_, &one, sizeof one);
  }
  static void close_link(Link& link) {
    if (link.client >= 0) close(link.client);
    if (link.server >= 0) close(link.server);
    link.client = link.server = -1;
  }
  static void no_delay(int fd) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }

  void accept_all(Clock::time_point now) {
    for (;;) {
      const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) return;
      bool refuse;
      {
        std::lock_guard lock(mutex_);
        refuse = now < refuse_until_;
      }
      if (refuse) {
        refused_.fetch_add(1);  // before the close the client may already be reacting to
        close(client);
        continue;
      }
      const int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr = loopback(upstream_port_);
      if (server < 0 || connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (server >= 0) close(server);
        close(client);  // the upstream is down: the client sees its connection closed
        continue;
      }
      fcntl(server, F_SETFL, fcntl(server, F_GETFL) | O_NONBLOCK);
      no_delay(client);
      no_delay(server);
      Link& link = links_.emplace_back();
      link.client = client;
      link.server = server;
      link.to_server.to = server;
      link.to_client.to = client;
      accepted_.fetch_add(1);
    }
  }

  // Reads what `from` has into `dir`, due one delay from now; false when `from` closed.
  bool read_into(int from, Direction& dir, Clock::time_point now, std::chrono::microseconds delay) {
    char buffer[65536];
    for (;;) {
      const ssize_t n = read(from, buffer, sizeof buffer);
      if (n > 0) {
        dir.queue.push_back({now + delay, std::string(buffer, static_cast<std::size_t>(n)), 0});
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (n < 0 && errno == EINTR) continue;
      return false;  // EOF or an error
    }
  }

  // Writes every due chunk the socket takes; false when the socket failed.
  static bool flush(Direction& dir, Clock::time_point now) {
    while (!dir.queue.empty() && dir.queue.front().due <= now) {
      Chunk& chunk = dir.queue.front();
      const ssize_t n = send(dir.to, chunk.bytes.data() + chunk.sent,
                             chunk.bytes.size() - chunk.sent, MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      chunk.sent += static_cast<std::size_t>(n);
      if (chunk.sent < chunk.bytes.size()) return true;  // the socket is full: POLLOUT later
      dir.queue.pop_front();
    }
    return true;
  }

  void run() {
    prctl(PR_SET_TIMERSLACK, 1UL);  // sub-millisecond delays must not be rounded up by 50 us
    std::vector<pollfd> fds;
    std::vector<Link*> owners;
    while (!stopping_) {
      std::chrono::microseconds delay;
      bool drop;
      {
        std::lock_guard lock(mutex_);
        delay = delay_;
        drop = drop_requested_;
        drop_requested_ = false;
      }
      if (drop) {
        for (auto& link : links_) close_link(link);
        links_.clear();
      }
      // Poll: the wake fd, the listener, each socket for reading, and for writing when a due chunk
      // waits for room. The timeout is the next chunk's due time.
      const Clock::time_point now = Clock::now();
      Clock::time_point next = now + std::chrono::milliseconds(100);
      fds.assign({{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}});
      owners.assign(2, nullptr);
      for (auto& link : links_) {
        for (Direction* dir : {&link.to_server, &link.to_client}) {
          if (!dir->queue.empty()) next = std::min(next, dir->queue.front().due);
        }
        const bool server_blocked =
            !link.to_server.queue.empty() && link.to_server.queue.front().due <= now;
        const bool client_blocked =
            !link.to_client.queue.empty() && link.to_client.queue.front().due <= now;
        fds.push_back(
            {link.client, static_cast<short>(POLLIN | (client_blocked ? POLLOUT : 0)), 0});
        owners.push_back(&link);
        fds.push_back(
            {link.server, static_cast<short>(POLLIN | (server_blocked ? POLLOUT : 0)), 0});
        owners.push_back(&link);
      }
      const auto wait = std::max(Clock::duration::zero(), next - now);
      const timespec timeout{
          static_cast<time_t>(std::chrono::duration_cast<std::chrono::seconds>(wait).count()),
          static_cast<long>((wait % std::chrono::seconds(1)) / std::chrono::nanoseconds(1))};
      if (ppoll(fds.data(), fds.size(), &timeout, nullptr) < 0 && errno != EINTR) return;
      const Clock::time_point after = Clock::now();
      if (fds[0].revents & POLLIN) {
        std::uint64_t ignored;
        [[maybe_unused]] const auto n = read(wake_fd_, &ignored, sizeof ignored);
      }
      if (fds[1].revents & POLLIN) accept_all(after);
      for (std::size_t i = 2; i < fds.size(); ++i) {
        Link& link = *owners[i];
        if (link.client < 0) continue;
        const bool is_client = fds[i].fd == link.client;
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
          Direction& dir = is_client ? link.to_server : link.to_client;
          if (!read_into(fds[i].fd, dir, after, delay)) close_link(link);
        }
      }
      for (auto& link : links_) {
        if (link.client < 0) continue;
        if (!flush(link.to_server, after) || !flush(link.to_client, after)) close_link(link);
      }
      links_.remove_if([](const Link& link) { return link.client < 0; });
    }
  }

  int upstream_port_;
  int port_ = 0;
  int listen_fd_ = -1, wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> accepted_{0}, refused_{0};
  std::mutex mutex_;
  std::chrono::microseconds delay_;   // guarded by mutex_
  Clock::time_point refuse_until_{};  // guarded by mutex_
  bool drop_requested_ = false;       // guarded by mutex_
  std::list<Link> links_;             // proxy thread only (and the destructor after join)
  std::thread thread_;
};

}  // namespace hetcache::testing
