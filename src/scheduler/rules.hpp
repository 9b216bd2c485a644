// Private: the fixed strategies' rules (FiberOnly, CpuOnly, GpuOnly, Hybrid), and the work
// Adaptive places by rule rather than by its cost model.
#pragma once

#include <hetcache/placement.hpp>

#include <functional>
#include <string>
#include <string_view>

namespace hetcache::scheduler {

// A get or put of at least kSequentialBelow keys that Adaptive still places by rule: at most
// optimal_batch_size keys -- one chunk, which every tier runs on the calling thread (the arena and
// fibers split only batches of more) -- and no round trip to a remote store to wait for (a
// store's own read chunk may be smaller, and fibers overlap those round trips). Choosing among
// tiers that run the same code would cost a 10-key memory read about 4% and learn only noise.
inline bool one_local_chunk(const SchedulerConfig& config, const Work& w) {
  return w.op != OpKind::Similarity && w.items <= config.optimal_batch_size &&
         !(w.round_trip_us > 0.0);
}

// Whether Adaptive places w by its cost model (else by rule, and learns nothing from it).
inline bool model_places(const SchedulerConfig& config, const Work& w) {
  return w.op == OpKind::Similarity || (w.items >= kSequentialBelow && !one_local_chunk(config, w));
}

// The tier `config.strategy` puts `work` on by rule (Adaptive: work of fewer than kSequentialBelow
// items and one_local_chunk; Hybrid's rule for anything else asked). The reason is formatted only
// when asked for (`reason` not null): scheduled operations decide on every call and rarely explain.
Tier rule_tier(const SchedulerConfig& config, bool gpu, std::string_view gpu_reason,
               const Work& work, std::string* reason);

// Hybrid's rule with the default SchedulerConfig: how an engine call that names no tier is placed.
// gpu_available() is asked only for work big enough for the GPU (opening CUDA is not free).
Tier default_rule_tier(const Work& work, const std::function<bool()>& gpu_available);

}  // namespace hetcache::scheduler
