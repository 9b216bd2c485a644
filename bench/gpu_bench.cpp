// The GPU benchmark: our top-k search over N candidates of d = 768, device-resident and streamed
// from host memory, against the bare cuBLAS GEMM of the same shape (the floor for large Q) and the
// device's copy bandwidth (the floor for Q = 1), for Q = 1, 16, 256, 4096, each k and precision
// asked for. torch's `topk(q @ c.T)` on the same shapes is bench/torch_bench.py, which
// scripts/gpu_bench.sh and scripts/gpu_lease.sh run beside it. Prints a markdown table; exits 2
// without a GPU.
//   hetcache_gpu_bench [--n N (<= 20M)] [--runs R] [--ks 10,100,1000]
//                      [--precisions f32,tf32,bf16,f16] [--modes resident,streamed]
// A streamed search copies every candidate to the device each time (3 GB per search at 1M x 768
// f32): at 10M, --modes resident keeps the run short.
#include <hetcache/hetcache.hpp>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_data.hpp"
#include "machine_limits.hpp"

namespace {

using Clock = std::chrono::steady_clock;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}
void check(cublasStatus_t e, const char* what) {
  if (e != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "%s: %s\n", what, cublasGetStatusString(e));
    std::exit(1);
  }
}

// Median ms of `runs` timings of f (synchronised), after one warm-up.
template <typename F>
double median_ms(int runs, F&& f) {
  std::vector<double> t;
  f();
  for (int r = 0; r < runs; ++r) {
    check(cudaDeviceSynchronize(), "sync");
    const auto t0 = Clock::now();
    f();
    check(cudaDeviceSynchronize(), "sync");
    t.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return hetcache::bench::median(t);
}

// Uniform [-1, 1) rows, filled by every core (10M x 768 is 7.7G draws).
hetcache::Matrix random_rows(std::size_t rows, std::size_t dim, std::uint64_t seed) {
  hetcache::Matrix m(rows, dim);
  const std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> workers;
  for (std::size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(seed * 1000003 + t);
      std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
      for (std::size_t r = rows * t / threads; r < rows * (t + 1) / threads; ++r)
        for (std::size_t j = 0; j < dim; ++j) m.row(r)[j] = uniform(rng);
    });
  }
  for (auto& w : workers) w.join();
  return m;
}

// A comma-separated list, each item through parse.
template <typename T, typename Parse>
std::vector<T> parse_list(const std::string& text, Parse&& parse) {
  std::vector<T> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(parse(item));
  return out;
}

int run(int argc, char** argv) {
  using namespace hetcache;
  std::size_t n = 1'000'000;
  const std::size_t dim = 768;
  int runs = 5;
  std::vector<std::size_t> ks{10, 100, 1000};
  std::vector<Precision> precisions{Precision::F32, Precision::Tf32, Precision::Bf16,
                                    Precision::F16};
  bool resident = true, streamed = true;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      const bool has_value = i + 1 < argc;
      if (a == "--n" && has_value) {
        n = bench::parse_size(argv[0], "--n", argv[++i], 1000, 20'000'000);  // <= 61 GB f32
      } else if (a == "--runs" && has_value) {
        runs = static_cast<int>(bench::parse_size(argv[0], "--runs", argv[++i], 1, 100));
      } else if (a == "--ks" && has_value) {
        ks = parse_list<std::size_t>(argv[++i], [&](const std::string& s) {
          return bench::parse_size(argv[0], "--ks", s.c_str(), 1, 100'000);
        });
      } else if (a == "--precisions" && has_value) {
        precisions = parse_list<Precision>(argv[++i],
                                           [](const std::string& s) { return parse_precision(s); });
      } else if (a == "--modes" && has_value) {
        const std::vector<std::string> modes =
            parse_list<std::string>(argv[++i], [](const std::string& s) { return s; });
        resident = std::find(modes.begin(), modes.end(), "resident") != modes.end();
        streamed = std::find(modes.begin(), modes.end(), "streamed") != modes.end();
        if (modes.empty() || resident + streamed != static_cast<int>(modes.size()))
          throw Error(ErrorCode::InvalidArgument,
                      "--modes takes resident and/or streamed, got '" + std::string(argv[i]) + "'");
      } else {
        std::cerr << "usage: hetcache_gpu_bench [--n N] [--runs R] [--ks 10,100,1000] "
                     "[--precisions f32,tf32,bf16,f16] [--modes resident,streamed]\n";
        return 2;
      }
    }
  } catch (const Error& e) {
    std::cerr << "hetcache_gpu_bench: " << e.what() << "\n";
    return 2;
  }
  if (ks.empty() || precisions.empty()) {
    std::cerr << "hetcache_gpu_bench: --ks and --precisions need at least one value\n";
    return 2;
  }
  SimilarityEngine probe;
  if (!probe.gpu_available()) {
    std::cerr << "no GPU tier: " << probe.gpu_stats().reason << "\n";
    return 2;
  }
  const std::vector<std::size_t> query_counts{1, 16, 256, 4096};
  const Matrix candidates = random_rows(n, dim, 7);
  std::vector<Matrix> queries;
  for (const std::size_t q : query_counts) queries.push_back(random_rows(q, dim, 8 + q));

  // Memory bandwidth: a device-to-device copy of 2 GiB (read + write counted).
  const std::size_t copy_bytes = std::size_t{2} << 30;
  void *a = nullptr, *b = nullptr;
  check(cudaMalloc(&a, copy_bytes), "cudaMalloc");
  check(cudaMalloc(&b, copy_bytes), "cudaMalloc");
  check(cudaMemset(a, 1, copy_bytes), "cudaMemset");
  const double copy_ms = median_ms(
      runs, [&] { check(cudaMemcpy(b, a, copy_bytes, cudaMemcpyDeviceToDevice), "copy"); });
  const double bandwidth = 2.0 * copy_bytes / (copy_ms * 1e-3);
  check(cudaFree(a), "cudaFree");
  check(cudaFree(b), "cudaFree");

  // The bare GEMM per Q: Q x N x d in f32, in tiles of 65536 candidates (our search's tile for
  // Q > 8; up to 8 queries it tiles 4x larger), into a score buffer; nothing else. Its device copy of the candidates is freed before our searches.
  std::vector<double> gemm_ms;
  {
    cublasHandle_t blas;
    check(cublasCreate(&blas), "cublasCreate");
    const std::size_t tile = 65536;
    float *scores = nullptr, *dq = nullptr, *dc = nullptr;
    check(cudaMalloc(&scores, query_counts.back() * tile * sizeof(float)), "cudaMalloc");
    check(cudaMalloc(&dq, query_counts.back() * dim * sizeof(float)), "cudaMalloc");
    check(cudaMalloc(&dc, n * dim * sizeof(float)), "cudaMalloc");
    check(cudaMemcpy(dc, candidates.data(), n * dim * sizeof(float), cudaMemcpyHostToDevice),
          "copy");
    for (std::size_t i = 0; i < query_counts.size(); ++i) {
      const int q = static_cast<int>(query_counts[i]);
      check(cudaMemcpy(dq, queries[i].data(), q * dim * sizeof(float), cudaMemcpyHostToDevice),
            "copy");
      gemm_ms.push_back(median_ms(runs, [&] {
        const float alpha = 1, beta = 0;
        for (std::size_t first = 0; first < n; first += tile) {
          const int rows = static_cast<int>(std::min(tile, n - first));
          check(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, rows, q, static_cast<int>(dim), &alpha,
                             dc + first * dim, CUDA_R_32F, static_cast<int>(dim), dq, CUDA_R_32F,
                             static_cast<int>(dim), &beta, scores, CUDA_R_32F,
                             static_cast<int>(tile), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                "cublasGemmEx");
        }
      }));
    }
    check(cudaFree(scores), "cudaFree");
    check(cudaFree(dq), "cudaFree");
    check(cudaFree(dc), "cudaFree");
    cublasDestroy(blas);
  }

  std::printf("# GPU search -- %s\n\n", probe.gpu_stats().device.c_str());
  std::printf(
      "N = %zu, d = %zu, Dot (as torch's q @ c.T); median of %d runs after a warm-up (ms). "
      "Memory bandwidth (device copy): %.0f GB/s. Bare f32 GEMM (ms):",
      n, dim, runs, bandwidth / 1e9);
  for (std::size_t i = 0; i < query_counts.size(); ++i)
    std::printf(" Q = %zu %.3f%s", query_counts[i], gemm_ms[i],
                i + 1 < query_counts.size() ? "," : ".\n\n");
  std::printf(
      "| Q | k | precision | resident ms | resident / f32 GEMM | bandwidth use | streamed ms "
      "|\n|---:|---:|---|---:|---:|---:|---:|\n");
  for (const Precision precision : precisions) {
    // One engine per precision (its streamed searches use gpu_precision), all on one GPU context.
    SimilarityOptions options;
    options.gpu_precision = precision;
    SimilarityEngine engine(options);
    DeviceMatrix on_device;
    if (resident) on_device = engine.upload(candidates.view(), precision);
    const bool two_bytes = precision == Precision::Bf16 || precision == Precision::F16;
    const double bytes = double(n) * dim * (two_bytes ? 2 : 4);
    for (std::size_t i = 0; i < query_counts.size(); ++i) {
      for (const std::size_t k : ks) {
        char row[160] = " |  |  | ";  // the resident cells, empty unless measured
        if (resident) {
          const double ms =
              median_ms(runs, [&] { engine.search(queries[i].view(), on_device, k, Metric::Dot); });
          std::snprintf(row, sizeof row, " %.3f | %.2fx | %.0f%% | ", ms, ms / gemm_ms[i],
                        100.0 * bytes / (ms * 1e-3) / bandwidth);
        }
        std::string streamed_cell;
        if (streamed) {
          const double ms = median_ms(runs, [&] {
            engine.search(queries[i].view(), candidates.view(), k, Metric::Dot, Tier::Gpu);
          });
          char text[32];
          std::snprintf(text, sizeof text, "%.3f", ms);
          streamed_cell = text;
        }
        std::printf("| %zu | %zu | %s |%s%s |\n", query_counts[i], k,
                    std::string(to_string(precision)).c_str(), row, streamed_cell.c_str());
      }
    }
  }
  const GpuStats s = probe.gpu_stats();  // every engine here shares one GPU tier
  std::printf("\nsearches %llu, OOM fallbacks %llu, tiles %llu\n",
              static_cast<unsigned long long>(s.searches),
              static_cast<unsigned long long>(s.oom_fallbacks),
              static_cast<unsigned long long>(s.tiles));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return hetcache::bench::guarded_main("hetcache_gpu_bench", run, argc, argv);
}
