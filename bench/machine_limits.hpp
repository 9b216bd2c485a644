// Benchmark helper: the machine's own limits, measured in the same run as the kernels.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace hetcache::bench {

// Read bandwidth in bytes/s: all `threads` stream disjoint parts of a buffer far larger than the
// last-level cache, summing it with the widest SIMD loads available. Median of several passes.
double measure_read_bandwidth(std::size_t threads, std::size_t bytes = std::size_t{2} << 30);

// Streams `floats` floats at `data` (64-byte aligned) once with all `threads`, summing them with
// the widest loads available: the time the memory system needs to deliver exactly those bytes.
void read_once(const float* data, std::size_t floats, std::size_t threads);

// FMA peak in flop/s (an FMA counts 2): all `threads` run independent FMA chains on registers
// with the widest vectors available (AVX-512, else AVX2+FMA, else SSE mul+add).
double measure_fma_peak(std::size_t threads);

// The name of the vector width measure_fma_peak used ("avx512", "avx2", "sse2").
const char* fma_peak_isa();

// memcpy bandwidth in bytes/s of one thread on a buffer far larger than the caches. Median of 5.
double measure_memcpy_bandwidth(std::size_t bytes = std::size_t{512} << 20);

// Sequential bandwidth of the disk under dir in bytes/s, with direct I/O (O_DIRECT, no page
// cache), as dd oflag=direct / iflag=direct measures it: a file of `bytes` written in 8 MiB blocks
// of random data and fdatasync'ed, then read back; the file is removed. Best of `passes`. Throws
// std::runtime_error when the file system refuses O_DIRECT.
struct DiskBandwidth {
  double write = 0, read = 0;
};
DiskBandwidth measure_disk_bandwidth(const std::string& dir,
                                     std::size_t bytes = std::size_t{2} << 30, int passes = 2);

// The median of v (the upper one for an even count).
double median(std::vector<double> v);

// The CPU's model name from /proc/cpuinfo ("unknown" when it has none).
std::string cpu_model();

}  // namespace hetcache::bench
