// Durability::SyncedWal syncs the write-ahead log before each put returns, and AsyncWal does not:
// this executable interposes fsync and fdatasync (its own definitions take precedence over libc's
// for librocksdb too) and counts the calls on RocksDB's *.log files. SIGKILL tests cannot tell the
// two modes apart -- the OS keeps unsynced writes of a killed process -- so this counts the syncs.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include <sys/syscall.h>
#include <unistd.h>

#include "cache/cache_test_util.hpp"

namespace {

std::atomic<int> log_syncs{0};

void count_if_log(int fd) {
  char link[64], target[4096];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = ::readlink(link, target, sizeof target - 1);
  if (n > 4 && std::string(target, static_cast<std::size_t>(n)).ends_with(".log")) ++log_syncs;
}

}  // namespace

extern "C" int fsync(int fd) {
  count_if_log(fd);
  return static_cast<int>(::syscall(SYS_fsync, fd));
}

extern "C" int fdatasync(int fd) {
  count_if_log(fd);
  return static_cast<int>(::syscall(SYS_fdatasync, fd));
}

namespace hetcache::test {
namespace {

int syncs_for_puts(Durability durability, int batches) {
  TempDir dir;
  CacheOptions options;
  options.dim = 16;
  RocksDbOptions rocks;
  rocks.path = dir.sub("db");
  rocks.durability = durability;
  options.durable = rocks;
  EmbeddingCache cache(options);
  const int before = log_syncs.load();
  for (int b = 0; b < batches; ++b) {
    const auto keys = make_keys("b" + std::to_string(b) + ":", 10);
    cache.put_batch(keys, matrix_for(keys, 1, 16).view());
  }
  cache.put("single", vector_for("single", 1, 16));
  return log_syncs.load() - before;
}

TEST(SyncedWal, EachAcknowledgedWriteIsSyncedAndAsyncWalSyncsNone) {
  EXPECT_GE(syncs_for_puts(Durability::SyncedWal, 20), 21);
  EXPECT_EQ(syncs_for_puts(Durability::AsyncWal, 20), 0);
}

}  // namespace
}  // namespace hetcache::test
