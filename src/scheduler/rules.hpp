// Private: the fixed strategies' rules (FiberOnly, CpuOnly, GpuOnly, Hybrid).
#pragma once

#include <hetcache/scheduler.hpp>

#include <string>
#include <string_view>

namespace hetcache::scheduler {

// The tier `config.strategy` (not Adaptive) puts `work` on. The reason is formatted only when
// asked for (`reason` not null): scheduled operations decide on every call and rarely explain.
Tier rule_tier(const SchedulerConfig& config, bool gpu, std::string_view gpu_reason,
               const Work& work, std::string* reason);

}  // namespace hetcache::scheduler
