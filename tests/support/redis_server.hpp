// A real redis-server on a free loopback port, for tests and benchmarks: started in the
// constructor, ready when it returns (it answered a PING), stopped in the destructor. kill() stops
// it hard (SIGKILL, as a crash), start() brings it back on the same port.
#pragma once

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace hetcache::testing {

// One blocking command on a hiredis connection (binary-safe arguments); nullptr when the
// connection failed. The caller frees the reply.
inline redisReply* redis_command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  return static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lengths.data()));
}

class RedisServerProcess {
 public:
  RedisServerProcess() : port_(free_port()) { start(); }
  // With more redis-server arguments (e.g. cluster mode).
  explicit RedisServerProcess(std::vector<std::string> extra_args)
      : port_(free_port()), extra_args_(std::move(extra_args)) {
    start();
  }
  ~RedisServerProcess() { stop(SIGTERM); }
  RedisServerProcess(const RedisServerProcess&) = delete;
  RedisServerProcess& operator=(const RedisServerProcess&) = delete;

  int port() const noexcept { return port_; }
  bool running() const noexcept { return pid_ > 0; }

  void start() {
    if (pid_ > 0) return;
    const std::string port = std::to_string(port_);
    std::vector<std::string> args = {"redis-server", "--port",           port, "--bind",
                                     "127.0.0.1",    "--save",           "",   "--appendonly",
                                     "no",           "--protected-mode", "no"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Its log would interleave with the test output; and a server left behind by a test that
    // aborted must not hold ctest's output pipe open, or ctest waits for it forever.
    posix_spawn_file_actions_t quiet;
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&quiet, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    const int spawned = posix_spawnp(&pid_, "redis-server", &quiet, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&quiet);
    if (spawned != 0) {
      pid_ = 0;
      throw std::runtime_error("cannot start redis-server (scripts/deps.sh installs it)");
    }
    for (int i = 0; i < 400; ++i) {
      if (ping()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    throw std::runtime_error("redis-server did not answer on port " + port);
  }

  // SIGKILL: the server dies at once, as in a crash (nothing is persisted: --save "").
  void kill() { stop(SIGKILL); }
  // SIGSTOP / SIGCONT: the server keeps its connections but answers nothing meanwhile.
  void pause() const { ::kill(pid_, SIGSTOP); }
  void resume() const { ::kill(pid_, SIGCONT); }

  bool ping() const {
    redisContext* c = redisConnect("127.0.0.1", port_);
    bool ok = false;
    if (c != nullptr && c->err == 0) {
      auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
      ok = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
      if (reply) freeReplyObject(reply);
    }
    if (c) redisFree(c);
    return ok;
  }

  // A loopback port nothing listens on now.
  static int free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      if (fd >= 0) close(fd);
      throw std::runtime_error("cannot find a free loopback port");
    }
    close(fd);
    return ntohs(addr.sin_port);
  }

 private:
  void stop(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = 0;
  }

  int port_;
  std::vector<std::string> extra_args_;
  pid_t pid_ = 0;
};

}  // namespace hetcache::testing
