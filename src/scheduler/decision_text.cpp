// How a decision reads: Decision::explain() and the durations in every reason.
#include <hetcache/scheduler.hpp>

#include <cstdio>
#include <sstream>

#include "scheduler/decision_text.hpp"

namespace hetcache {

std::string scheduler::format_us(double us) {
  char buf[32];
  if (us >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f s", us / 1e6);
  } else if (us >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.2f ms", us / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f us", us);
  }
  return buf;
}

std::string Decision::explain() const {
  using scheduler::format_us;
  std::ostringstream o;
  o << "strategy " << to_string(strategy) << ": " << to_string(tier) << "\n  " << reason << '\n';
  for (const TierCost& c : costs) {
    o << "  " << to_string(c.tier) << ": ";
    if (!c.available) {
      o << "unavailable (" << c.note << ")\n";
      continue;
    }
    o << format_us(c.predicted_us) << " = (" << format_us(c.overhead_us) << " overhead + "
      << format_us(c.work_us) << " work";
    if (c.transfer_us > 0.0) o << " + " << format_us(c.transfer_us) << " transfer";
    o << ") x " << c.correction << " correction";
    if (c.wait_us > 0.0) o << " + " << format_us(c.wait_us) << " waiting on the store";
    if (c.queue_us > 0.0) o << " + " << format_us(c.queue_us) << " queue";
    if (c.wake_us > 0.0) o << " + " << format_us(c.wake_us) << " wake-up";
    o << '\n';
  }
  return o.str();
}

}  // namespace hetcache
