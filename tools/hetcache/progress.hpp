// Progress of a long command on stderr: a bar with rate and ETA on a terminal, a plain line every
// 10% (or 5 s) otherwise, so logs stay readable.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace hetcache::cli {

class Progress {
 public:
  Progress(std::string label, std::size_t total, bool quiet = false)
      : label_(std::move(label)), total_(total), quiet_(quiet), tty_(::isatty(2) == 1) {}

  void update(std::size_t done) {
    if (quiet_) return;
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double fraction = total_ == 0 ? 1.0 : double(done) / double(total_);
    if (tty_) {
      if (done != total_ && now - last_ < std::chrono::milliseconds(100)) return;
      last_ = now;
      const int width = 30, filled = static_cast<int>(fraction * width);
      const double rate = elapsed > 0 ? double(done) / elapsed : 0.0;
      const double eta = rate > 0 ? double(total_ - done) / rate : 0.0;
      std::fprintf(stderr, "\r%s [%s%s] %zu/%zu %.0f/s ETA %.0fs ", label_.c_str(),
                   std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), done,
                   total_, rate, eta);
      if (done == total_) std::fputc('\n', stderr);
    } else {
      const int decile = static_cast<int>(fraction * 10);
      if (done != total_ && decile == last_decile_ && now - last_ < std::chrono::seconds(5)) return;
      last_decile_ = decile;
      last_ = now;
      std::fprintf(stderr, "%s: %zu/%zu (%.0f%%, %.0f/s)\n", label_.c_str(), done, total_,
                   fraction * 100.0, elapsed > 0 ? double(done) / elapsed : 0.0);
    }
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_;
  std::size_t total_;
  bool quiet_, tty_;
  Clock::time_point start_ = Clock::now(), last_{};
  int last_decile_ = -1;
};

}  // namespace hetcache::cli
