// Private: how a decision reads -- durations as the reasons and Decision::explain() write them.
#pragma once

#include <string>

namespace hetcache::scheduler {

// A duration in microseconds as "12.3 us", "4.56 ms" or "1.23 s".
std::string format_us(double us);

}  // namespace hetcache::scheduler
