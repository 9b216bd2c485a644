// Micro-benchmarks of each ISA's kernels on one thread (the Sequential tier), random data.
//   hetcache_kernels_bench --benchmark_filter=topk/avx512
#include <hetcache/hetcache.hpp>

#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <string>

namespace {

using hetcache::Isa;
using hetcache::Matrix;
using hetcache::Metric;
using hetcache::Tier;

Matrix random_matrix(std::size_t rows, std::size_t dim, unsigned seed) {
  Matrix m(rows, dim);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < dim; ++c) m(r, c) = u(rng);
  }
  return m;
}

void set_counters(benchmark::State& state, std::size_t nq, std::size_t n, std::size_t dim) {
  const double iters = static_cast<double>(state.iterations());
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * double(nq) * double(n) * double(dim) * iters * 1e-9, benchmark::Counter::kIsRate);
  state.counters["GB/s"] =
      benchmark::Counter(double(n) * double(dim) * 4.0 * iters * 1e-9, benchmark::Counter::kIsRate);
}

// Fused top-k search: args Q, N, d; k = 10.
void topk(benchmark::State& state, Isa isa, Metric metric) {
  const auto nq = static_cast<std::size_t>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1));
  const auto dim = static_cast<std::size_t>(state.range(2));
  hetcache::SimilarityEngine engine(hetcache::SimilarityOptions{isa});
  const Matrix c = random_matrix(n, dim, 1), q = random_matrix(nq, dim, 2);
  for (auto _ : state) benchmark::DoNotOptimize(engine.search(q, c, 10, metric, Tier::Sequential));
  set_counters(state, nq, n, dim);
}

// Full score matrix: args Q, N, d.
void scores(benchmark::State& state, Isa isa) {
  const auto nq = static_cast<std::size_t>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1));
  const auto dim = static_cast<std::size_t>(state.range(2));
  hetcache::SimilarityEngine engine(hetcache::SimilarityOptions{isa});
  const Matrix c = random_matrix(n, dim, 1), q = random_matrix(nq, dim, 2);
  for (auto _ : state) benchmark::DoNotOptimize(engine.scores(q, c, Metric::Dot, Tier::Sequential));
  set_counters(state, nq, n, dim);
}

const int registered = [] {
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (!hetcache::isa_supported(isa)) continue;
    const std::string name(hetcache::to_string(isa));
    benchmark::RegisterBenchmark(("topk/" + name + "/dot").c_str(), topk, isa, Metric::Dot)
        ->Args({1, 100000, 768})
        ->Args({16, 20000, 768})
        ->Args({64, 20000, 768})
        ->Args({64, 20000, 100})
        ->Args({16, 100000, 384})
        ->Args({64, 100000, 768})
        ->Args({256, 20000, 1536})
        ->Args({1, 50000, 1536})
        ->Args({16, 50000, 1536})
        ->Args({64, 20000, 1536})
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("topk/" + name + "/cosine").c_str(), topk, isa, Metric::Cosine)
        ->Args({64, 20000, 768})
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("topk/" + name + "/l2").c_str(), topk, isa, Metric::L2)
        ->Args({64, 20000, 768})
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("scores/" + name).c_str(), scores, isa)
        ->Args({16, 20000, 768})
        ->Unit(benchmark::kMillisecond);
  }
  return 0;
}();

}  // namespace
