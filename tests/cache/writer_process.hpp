// Test helper: hetcache_crash_writer as a child process that ingests batches into a database
// forever and prints each batch's number once put_batch has returned.
#pragma once

#include <spawn.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace hetcache::test {

// A running writer process: its pid and the lines it prints (one per acknowledged batch).
struct Writer {
  pid_t pid = 0;
  FILE* lines = nullptr;
};

// Batch b holds the 16 keys make_keys("b<b>-", 16) with values matrix_for(keys, b, dim); with
// durability "bulk", kBulkBatch keys written by one ingest_batch as table files.
inline Writer start_writer(const std::string& dir, std::size_t dim, long first_batch,
                           const char* durability) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) throw std::runtime_error("pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  const std::string dim_text = std::to_string(dim), first = std::to_string(first_batch);
  std::vector<char*> argv = {const_cast<char*>(HETCACHE_CRASH_WRITER),
                             const_cast<char*>(dir.c_str()),
                             const_cast<char*>(dim_text.c_str()),
                             const_cast<char*>(first.c_str()),
                             const_cast<char*>(durability),
                             nullptr};
  Writer writer;
  if (posix_spawn(&writer.pid, HETCACHE_CRASH_WRITER, &actions, nullptr, argv.data(), environ) !=
      0) {
    throw std::runtime_error("posix_spawn " HETCACHE_CRASH_WRITER);
  }
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  writer.lines = fdopen(pipe_fds[0], "r");
  return writer;
}

}  // namespace hetcache::test
