// The GPU benchmark (issue: GPU tier): our top-k search on a device-resident set of N = 1M, d = 768
// against the bare cuBLAS GEMM of the same shape (the floor for large Q) and the device's memory
// bandwidth (the floor for Q = 1), for Q = 1, 16, 256, 4096 and k = 10, 1000, in f32 and bf16.
// torch's `topk(q @ c.T)` on the same shapes is measured by bench/torch_bench.py in the same run
// (scripts/gpu_bench.sh). Prints a markdown table; exits 2 without a GPU.
#include <hetcache/hetcache.hpp>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <vector>

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

// Median ms of `runs` timings of f (synchronised).
template <typename F>
double median_ms(int runs, F&& f) {
  std::vector<double> t;
  f();  // warm-up
  for (int r = 0; r < runs; ++r) {
    check(cudaDeviceSynchronize(), "sync");
    const auto t0 = Clock::now();
    f();
    check(cudaDeviceSynchronize(), "sync");
    t.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return hetcache::bench::median(t);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace hetcache;
  std::size_t n = 1'000'000;
  const std::size_t dim = 768;
  int runs = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--n" && i + 1 < argc)
      n = std::stoul(argv[++i]);
    else if (a == "--runs" && i + 1 < argc)
      runs = std::stoi(argv[++i]);
    else {
      std::cerr << "usage: hetcache_gpu_bench [--n N] [--runs R]\n";
      return 2;
    }
  }
  SimilarityEngine engine;
  if (!engine.gpu_available()) {
    std::cerr << "no GPU tier: " << engine.gpu_stats().reason << "\n";
    return 2;
  }
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  Matrix candidates(n, dim);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t j = 0; j < dim; ++j) candidates.row(r)[j] = uniform(rng);
  const DeviceMatrix f32 = engine.upload(candidates.view(), Precision::F32);
  const DeviceMatrix bf16 = engine.upload(candidates.view(), Precision::Bf16);

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

  // The bare GEMM: Q x N x d in f32 (and bf16), tiled over N as our search tiles it, into a score
  // buffer; nothing else.
  cublasHandle_t blas;
  check(cublasCreate(&blas), "cublasCreate");
  const std::size_t tile = 65536;
  float* scores = nullptr;
  float* dq = nullptr;
  check(cudaMalloc(&scores, 4096 * tile * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&dq, 4096 * dim * sizeof(float)), "cudaMalloc");
  float* dc = nullptr;
  check(cudaMalloc(&dc, n * dim * sizeof(float)), "cudaMalloc");
  check(cudaMemcpy(dc, candidates.data(), n * dim * sizeof(float), cudaMemcpyHostToDevice), "copy");

  std::printf("# GPU search -- %s\n\n", engine.gpu_stats().device.c_str());
  std::printf(
      "N = %zu, d = %zu, device-resident candidates; median of %d runs (ms). Memory "
      "bandwidth (device copy): %.0f GB/s.\n\n",
      n, dim, runs, bandwidth / 1e9);
  std::printf(
      "| Q | k | precision | hetcache ms | bare GEMM ms | hetcache / GEMM | bandwidth use "
      "|\n|---:|---:|---|---:|---:|---:|---:|\n");
  for (const std::size_t q : {1, 16, 256, 4096}) {
    Matrix queries(q, dim);
    for (std::size_t r = 0; r < q; ++r)
      for (std::size_t j = 0; j < dim; ++j) queries.row(r)[j] = uniform(rng);
    check(cudaMemcpy(dq, queries.data(), q * dim * sizeof(float), cudaMemcpyHostToDevice), "copy");
    const double gemm_ms = median_ms(runs, [&] {
      const float alpha = 1, beta = 0;
      for (std::size_t first = 0; first < n; first += tile) {
        const int rows = static_cast<int>(std::min(tile, n - first));
        check(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, rows, static_cast<int>(q),
                           static_cast<int>(dim), &alpha, dc + first * dim, CUDA_R_32F,
                           static_cast<int>(dim), dq, CUDA_R_32F, static_cast<int>(dim), &beta,
                           scores, CUDA_R_32F, static_cast<int>(tile), CUBLAS_COMPUTE_32F,
                           CUBLAS_GEMM_DEFAULT),
              "cublasGemmEx");
      }
    });
    for (const std::size_t k : {10, 1000}) {
      for (const auto& [name, set] : {std::pair{"f32", &f32}, std::pair{"bf16", &bf16}}) {
        const double ms =
            median_ms(runs, [&] { engine.search(queries.view(), *set, k, Metric::Dot); });
        const double bytes = double(n) * dim * (set->precision() == Precision::Bf16 ? 2 : 4);
        std::printf("| %zu | %zu | %s | %.3f | %s | %s | %.0f%% |\n", q, k, name, ms,
                    set->precision() == Precision::F32 ? std::to_string(gemm_ms).c_str() : "",
                    set->precision() == Precision::F32 ? std::to_string(ms / gemm_ms).c_str() : "",
                    100.0 * bytes / (ms * 1e-3) / bandwidth);
      }
    }
  }
  const GpuStats s = engine.gpu_stats();
  std::printf("\nsearches %llu, OOM fallbacks %llu, tiles %llu\n",
              static_cast<unsigned long long>(s.searches),
              static_cast<unsigned long long>(s.oom_fallbacks),
              static_cast<unsigned long long>(s.tiles));
  cublasDestroy(blas);
  return 0;
}
