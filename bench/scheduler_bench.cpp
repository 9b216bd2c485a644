// The cost of one scheduling decision (target <= 1 us per call): Hybrid's rule and Adaptive's
// cost model, for an I/O batch and a similarity search. Calibration is loaded before timing.
#include <hetcache/scheduler.hpp>

#include <benchmark/benchmark.h>

#include <filesystem>

namespace {

using namespace hetcache;

Scheduler& scheduler_for(Strategy strategy) {
  static auto make = [](Strategy s) {
    SchedulerConfig c;
    c.strategy = s;
    c.calibration_dir =
        (std::filesystem::temp_directory_path() / "hetcache-scheduler-bench").string();
    auto* made = new Scheduler(c);
    Work w;
    (void)made->decide(w);  // calibrate (or load) before timing
    return made;
  };
  static Scheduler* hybrid = make(Strategy::Hybrid);
  static Scheduler* adaptive = make(Strategy::Adaptive);
  return strategy == Strategy::Hybrid ? *hybrid : *adaptive;
}

void decide(benchmark::State& state, Strategy strategy, OpKind op) {
  Scheduler& s = scheduler_for(strategy);
  Work w;
  w.op = op;
  w.items = op == OpKind::Similarity ? 100000 : 1000;
  w.queries = 16;
  w.dim = 768;
  for (auto _ : state) benchmark::DoNotOptimize(s.decide(w));
}

BENCHMARK_CAPTURE(decide, hybrid_get_batch, Strategy::Hybrid, OpKind::GetBatch);
BENCHMARK_CAPTURE(decide, hybrid_similarity, Strategy::Hybrid, OpKind::Similarity);
BENCHMARK_CAPTURE(decide, adaptive_get_batch, Strategy::Adaptive, OpKind::GetBatch);
BENCHMARK_CAPTURE(decide, adaptive_similarity, Strategy::Adaptive, OpKind::Similarity);

}  // namespace
