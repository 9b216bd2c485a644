#include "cache/durable/rocksdb_log.hpp"

#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <mutex>

namespace hetcache::cache {
namespace {

constexpr std::uintmax_t kMaxLogBytes = std::uintmax_t{1} << 20;

class FileLog final : public rocksdb::Logger {
 public:
  explicit FileLog(const std::string& dir) : Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {
    const std::filesystem::path log = std::filesystem::path(dir) / "LOG";
    std::error_code ec;
    if (std::filesystem::file_size(log, ec) > kMaxLogBytes && !ec)
      std::filesystem::rename(log, std::filesystem::path(dir) / "LOG.old", ec);
    file_ = std::fopen(log.c_str(), "a");  // null when it cannot be written: nothing is logged
  }
  ~FileLog() override {
    if (file_ != nullptr) std::fclose(file_);
  }

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    if (file_ == nullptr) return;
    std::lock_guard lock(mutex_);
    // Failures are ignored: a full disk is reported by the write that RocksDB was doing.
    std::vfprintf(file_, format, ap);
    std::fputc('\n', file_);
    std::fflush(file_);
  }

 private:
  std::mutex mutex_;
  std::FILE* file_ = nullptr;
};

class SilentLog final : public rocksdb::Logger {
 public:
  SilentLog() : Logger(rocksdb::InfoLogLevel::HEADER_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}
};

}  // namespace

std::shared_ptr<rocksdb::Logger> make_database_log(const std::string& dir) {
  return std::make_shared<FileLog>(dir);
}

std::shared_ptr<rocksdb::Logger> make_silent_log() { return std::make_shared<SilentLog>(); }

}  // namespace hetcache::cache
