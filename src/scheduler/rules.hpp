// Private: the fixed strategies' rules (FiberOnly, CpuOnly, GpuOnly, Hybrid).
#pragma once

#include <hetcache/placement.hpp>

#include <functional>
#include <string>
#include <string_view>

namespace hetcache::scheduler {

// The tier `config.strategy` (not Adaptive) puts `work` on. The reason is formatted only when
// asked for (`reason` not null): scheduled operations decide on every call and rarely explain.
Tier rule_tier(const SchedulerConfig& config, bool gpu, std::string_view gpu_reason,
               const Work& work, std::string* reason);

// Hybrid's rule with the default SchedulerConfig: how an engine call that names no tier is placed.
// gpu_available() is asked only for work big enough for the GPU (opening CUDA is not free).
Tier default_rule_tier(const Work& work, const std::function<bool()>& gpu_available);

}  // namespace hetcache::scheduler
