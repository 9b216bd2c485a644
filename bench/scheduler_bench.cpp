// The cost of one scheduling decision (target <= 1 us per call): Hybrid's rule and Adaptive's
// cost model, for an I/O batch and a similarity search. Calibration is loaded before timing.
#include <hetcache/scheduler.hpp>

#include <benchmark/benchmark.h>

#include <filesystem>
#include <vector>

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

// The whole overhead of a scheduled operation (decide, time, learn) on the smallest search: the
// same search run directly on the calling thread is the baseline.
void tiny_search(benchmark::State& state, bool scheduled) {
  Scheduler& s = scheduler_for(Strategy::Adaptive);
  constexpr std::size_t kDim = 768, kRows = 10;
  std::vector<float> data((kRows + 1) * kDim);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 97) * 0.01f + 0.5f;
  const MatrixView candidates(data.data(), kRows, kDim);
  const MatrixView query(data.data() + kRows * kDim, 1, kDim);
  for (auto _ : state) {
    if (scheduled) {
      benchmark::DoNotOptimize(s.search(query, candidates, 10, Metric::Cosine));
    } else {
      benchmark::DoNotOptimize(
          s.engine().search(query, candidates, 10, Metric::Cosine, Tier::Sequential));
    }
  }
}

BENCHMARK_CAPTURE(tiny_search, direct_sequential_q1_n10, false);
BENCHMARK_CAPTURE(tiny_search, scheduled_adaptive_q1_n10, true);

BENCHMARK_CAPTURE(decide, hybrid_get_batch, Strategy::Hybrid, OpKind::GetBatch);
BENCHMARK_CAPTURE(decide, hybrid_similarity, Strategy::Hybrid, OpKind::Similarity);
BENCHMARK_CAPTURE(decide, adaptive_get_batch, Strategy::Adaptive, OpKind::GetBatch);
BENCHMARK_CAPTURE(decide, adaptive_similarity, Strategy::Adaptive, OpKind::Similarity);

}  // namespace
