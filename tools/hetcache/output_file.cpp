#include "output_file.hpp"

#include <hetcache/error.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

#include "file_names.hpp"

namespace hetcache::cli {
namespace fs = std::filesystem;
namespace {

bool is_database_directory(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "CURRENT", ec) && fs::is_regular_file(dir / "IDENTITY", ec);
}

}  // namespace

OutputFile::OutputFile(std::string path) : path_(std::move(path)) {
  std::error_code ec;
  fs::path target(path_);
  if (target.filename().empty() || fs::is_directory(target, ec))
    file_error(path_, "is a directory");
  if (fs::is_symlink(target, ec)) {  // replace what it points to, when it points somewhere
    const fs::path resolved = fs::canonical(target, ec);
    if (!ec) target = resolved;
  }
  const auto status = fs::status(target, ec);
  if (fs::exists(status) && !fs::is_regular_file(status)) {
    // A device or a pipe (/dev/stdout, /dev/full): nothing to keep, written in place.
    out_.open(path_, std::ios::binary);
    if (!out_) file_error(path_, std::string("cannot write: ") + std::strerror(errno));
    return;
  }
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir, ec))
    file_error(path_, "the directory " + dir.string() + " does not exist");
  for (fs::path d = fs::weakly_canonical(dir, ec); !d.empty(); d = d.parent_path()) {
    if (is_database_directory(d))
      file_error(path_, "is inside the database directory " + d.string() +
                            "; write the output somewhere else");
    if (d == d.parent_path()) break;
  }
  path_ = target.string();
  temporary_ =
      (dir / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()))).string();
  out_.open(temporary_, std::ios::binary | std::ios::trunc);
  if (!out_) file_error(path_, std::string("cannot write: ") + std::strerror(errno));
}

OutputFile::~OutputFile() {
  if (committed_ || temporary_.empty()) return;
  out_.close();
  std::error_code ec;
  fs::remove(temporary_, ec);
}

void OutputFile::commit() {
  errno = 0;
  out_.flush();
  if (!out_) file_error(path_, std::string("write failed: ") + std::strerror(errno ? errno : EIO));
  out_.close();
  if (!out_) file_error(path_, std::string("write failed: ") + std::strerror(errno ? errno : EIO));
  committed_ = temporary_.empty();
  if (committed_) return;  // written in place
  // The data reaches the disk before the name does, so a crash never leaves a short target.
  const int fd = ::open(temporary_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int e = errno;
    if (fd >= 0) ::close(fd);
    file_error(path_, std::string("write failed: ") + std::strerror(e));
  }
  ::close(fd);
  if (std::rename(temporary_.c_str(), path_.c_str()) != 0)
    file_error(path_, std::string("cannot replace: ") + std::strerror(errno));
  committed_ = true;
}

}  // namespace hetcache::cli
