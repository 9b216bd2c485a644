// Read-bandwidth and FMA-peak kernels. Target attributes (not -m flags) keep this unit runnable on
// any x86-64: each wide path runs only after __builtin_cpu_supports says it may.
#include "machine_limits.hpp"

// GCC 12 reports its own _mm512_undefined_* helpers as uninitialised (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <fcntl.h>
#include <immintrin.h>
#include <unistd.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace hetcache::bench {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

namespace {

bool has_avx512() { return __builtin_cpu_supports("avx512f"); }
bool has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

__attribute__((target("avx2"))) float sum_avx2(const float* p, std::size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (std::size_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  float out[8];
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  return out[0] + out[7];
}

float sum_sse(const float* p, std::size_t n) {
  __m128 a0 = _mm_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (std::size_t i = 0; i + 16 <= n; i += 16) {
    a0 = _mm_add_ps(a0, _mm_load_ps(p + i));
    a1 = _mm_add_ps(a1, _mm_load_ps(p + i + 4));
    a2 = _mm_add_ps(a2, _mm_load_ps(p + i + 8));
    a3 = _mm_add_ps(a3, _mm_load_ps(p + i + 12));
  }
  float out[4];
  _mm_storeu_ps(out, _mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3)));
  return out[0] + out[3];
}

constexpr int kChains = 12;  // independent accumulators: > latency x pipes on current cores

__attribute__((target("avx512f"))) float fma_avx512(std::size_t iters) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.001f * float(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (std::size_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  float sum = 0;
  for (int i = 0; i < kChains; ++i) sum += _mm512_reduce_add_ps(acc[i]);
  return sum;
}

__attribute__((target("avx2,fma"))) float fma_avx2(std::size_t iters) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(0.001f * float(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (std::size_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  float out[8], sum = 0;
  for (int i = 0; i < kChains; ++i) {
    _mm256_storeu_ps(out, acc[i]);
    sum += out[0];
  }
  return sum;
}

float muladd_sse(std::size_t iters) {
  __m128 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm_set1_ps(0.001f * float(i));
  const __m128 a = _mm_set1_ps(0.999999f), b = _mm_set1_ps(1e-7f);
  for (std::size_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], a), b);
  }
  float sum = 0;
  for (int i = 0; i < kChains; ++i) sum += _mm_cvtss_f32(acc[i]);
  return sum;
}

template <class Fn>
double median_wall_seconds(int runs, Fn&& fn) {
  std::vector<double> t;
  for (int r = 0; r < runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return median(std::move(t));
}

template <class Fn>
void on_threads(std::size_t threads, Fn&& fn) {
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < threads; ++t) pool.emplace_back([&fn, t] { fn(t); });
  for (auto& th : pool) th.join();
}

volatile float g_sink;  // keeps the measured work observable

}  // namespace

double measure_read_bandwidth(std::size_t threads, std::size_t bytes) {
  const std::size_t n = bytes / sizeof(float);
  std::unique_ptr<float[], void (*)(float*)> buf(
      static_cast<float*>(::operator new(n * sizeof(float), std::align_val_t(64))),
      [](float* p) { ::operator delete(p, std::align_val_t(64)); });
  const std::size_t part = n / threads / 64 * 64;
  // First touch from the reading threads, with non-zero data.
  on_threads(threads, [&](std::size_t t) {
    for (std::size_t i = t * part; i < (t + 1) * part; ++i) buf[i] = 1.0f + float(i & 7);
  });
  const bool wide = has_avx2();
  const double s = median_wall_seconds(7, [&] {
    on_threads(threads, [&](std::size_t t) {
      const float* p = buf.get() + t * part;
      g_sink = wide ? sum_avx2(p, part) : sum_sse(p, part);
    });
  });
  return static_cast<double>(part * threads * sizeof(float)) / s;
}

void read_once(const float* data, std::size_t floats, std::size_t threads) {
  const std::size_t part = floats / threads / 64 * 64;
  const bool wide = has_avx2();
  on_threads(threads, [&](std::size_t t) {
    const float* p = data + t * part;
    const std::size_t n = t + 1 == threads ? floats - t * part : part;
    g_sink = wide ? sum_avx2(p, n) : sum_sse(p, n);
  });
}

double measure_fma_peak(std::size_t threads) {
  const std::size_t iters = 50'000'000;
  const bool avx512 = has_avx512(), avx2 = has_avx2();
  const double lanes = avx512 ? 16 : avx2 ? 8 : 4;
  const double s = median_wall_seconds(5, [&] {
    on_threads(threads, [&](std::size_t) {
      g_sink = avx512 ? fma_avx512(iters) : avx2 ? fma_avx2(iters) : muladd_sse(iters);
    });
  });
  return static_cast<double>(threads) * static_cast<double>(iters) * kChains * lanes * 2.0 / s;
}

const char* fma_peak_isa() { return has_avx512() ? "avx512" : has_avx2() ? "avx2" : "sse2"; }

double measure_memcpy_bandwidth(std::size_t bytes) {
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  const double seconds =
      median_wall_seconds(5, [&] { std::memcpy(dst.data(), src.data(), bytes); });
  if (dst[bytes / 2] != 1) std::abort();  // keeps the copy observable
  return static_cast<double>(bytes) / seconds;
}

DiskBandwidth measure_disk_bandwidth(const std::string& dir, std::size_t bytes, int passes) {
  constexpr std::size_t kBlock = std::size_t{8} << 20;
  bytes = std::max(kBlock, bytes / kBlock * kBlock);
  void* raw = nullptr;
  if (posix_memalign(&raw, 4096, kBlock) != 0) throw std::bad_alloc();
  std::unique_ptr<void, decltype(&std::free)> buffer(raw, &std::free);
  std::uint64_t x = 0x9E3779B97F4A7C15ull;  // random, so no layer can compress or skip it
  for (std::size_t i = 0; i < kBlock / 8; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    static_cast<std::uint64_t*>(raw)[i] = x;
  }
  const std::string path = dir + "/hetcache-disk-bandwidth.tmp";
  const auto fail = [&](const char* what) {
    const std::string reason = std::strerror(errno);
    ::unlink(path.c_str());
    throw std::runtime_error(std::string(what) + " " + path + " with O_DIRECT: " + reason);
  };
  const auto seconds = [](auto start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  DiskBandwidth best;
  for (int pass = 0; pass < passes; ++pass) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0600);
    if (fd < 0) fail("cannot create");
    auto start = std::chrono::steady_clock::now();
    for (std::size_t done = 0; done < bytes; done += kBlock)
      if (::write(fd, raw, kBlock) != static_cast<ssize_t>(kBlock)) fail("cannot write");
    if (::fdatasync(fd) != 0) fail("cannot sync");
    best.write = std::max(best.write, double(bytes) / seconds(start));
    ::close(fd);
    fd = ::open(path.c_str(), O_RDONLY | O_DIRECT);
    if (fd < 0) fail("cannot open");
    start = std::chrono::steady_clock::now();
    for (std::size_t done = 0; done < bytes; done += kBlock)
      if (::read(fd, raw, kBlock) != static_cast<ssize_t>(kBlock)) fail("cannot read");
    best.read = std::max(best.read, double(bytes) / seconds(start));
    ::close(fd);
  }
  ::unlink(path.c_str());
  return best;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

}  // namespace hetcache::bench
