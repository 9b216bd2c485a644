// Progress of a long command on stderr: a bar with rate and ETA on a terminal, a plain line every
// 10% (or 5 s) otherwise, so logs stay readable. The total may be an estimate (a database's
// approximate size): it grows when passed, finish() ends at the true count, and a total of 0
// (unknown) shows the count and rate without a bar. The last line comes from finish(). Work done
// within half a second shows nothing at all, so short commands print only their result (and an
// error stays one line).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

namespace hetcache::cli {

class Progress {
 public:
  Progress(std::string label, std::size_t total, bool quiet = false)
      : label_(std::move(label)), total_(total), quiet_(quiet), tty_(::isatty(2) == 1) {}

  void update(std::size_t done) { show(done, false); }
  // The work is over at `done` items (which may differ from an estimated total).
  void finish(std::size_t done) {
    total_ = done;
    show(done, true);
  }

 private:
  using Clock = std::chrono::steady_clock;

  void show(std::size_t done, bool final) {
    if (quiet_ || shown_final_) return;
    if (total_ != 0) total_ = std::max(total_, done);
    const auto now = Clock::now();
    if (!shown_any_ && now - start_ < std::chrono::milliseconds(500)) return;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? double(done) / elapsed : 0.0;
    const double fraction = total_ == 0 ? 0.0 : double(done) / double(total_);
    if (tty_) {
      if (!final && now - last_ < std::chrono::milliseconds(100)) return;
      if (total_ == 0) {
        std::fprintf(stderr, "\r%s: %zu, %.0f/s ", label_.c_str(), done, rate);
      } else {
        const int width = 30, filled = static_cast<int>(fraction * width);
        const double eta = rate > 0 ? double(total_ - done) / rate : 0.0;
        std::fprintf(stderr, "\r%s [%s%s] %zu/%zu %.0f/s ETA %.0fs ", label_.c_str(),
                     std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                     done, total_, rate, eta);
      }
      if (final) std::fputc('\n', stderr);
    } else {
      const int decile = static_cast<int>(fraction * 10);
      if (final ? done == last_done_
                : (total_ == 0 || decile == last_decile_) && now - last_ < std::chrono::seconds(5))
        return;  // a final line repeats nothing already printed
      last_decile_ = decile;
      if (total_ == 0)
        std::fprintf(stderr, "%s: %zu (%.0f/s)\n", label_.c_str(), done, rate);
      else
        std::fprintf(stderr, "%s: %zu/%zu (%.0f%%, %.0f/s)\n", label_.c_str(), done, total_,
                     fraction * 100.0, rate);
    }
    last_ = now;
    last_done_ = done;
    shown_final_ = final;
    shown_any_ = true;
  }

  std::string label_;
  std::size_t total_;
  bool quiet_, tty_, shown_final_ = false, shown_any_ = false;
  Clock::time_point start_ = Clock::now(), last_ = Clock::now();
  int last_decile_ = -1;
  std::size_t last_done_ = static_cast<std::size_t>(-1);
};

}  // namespace hetcache::cli
