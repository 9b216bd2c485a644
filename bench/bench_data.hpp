// Benchmark helpers: the random data, the interleaved timing and the report output of the
// comparisons here.
#pragma once

#include <hetcache/matrix.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hetcache::bench {

// rows x dim uniform in [-1, 1) from splitmix64 (never all zero), filled by `threads` threads;
// the same seed gives the same matrix in every benchmark.
Matrix random_matrix(std::size_t rows, std::size_t dim, std::uint64_t seed, std::size_t threads);

// Median wall time (seconds) of each system. Systems run interleaved, one run of each per round,
// so a slow stretch of a shared machine hits all of them alike instead of one system's whole
// series. At least `min_rounds` rounds, more (up to 15) while any system's total is under 0.3 s.
// Each system is warmed up once first (page faults, thread pools, caches).
std::vector<double> interleaved_medians(int min_rounds,
                                        const std::vector<std::function<void()>>& systems);

// A command-line size: `text` as an integer in [lo, hi], or a message naming `program`, `flag` and
// the bad text on stderr and exit(2). Never trusts a size from input that it has not range-checked.
std::size_t parse_size(const char* program, const char* flag, const char* text, std::size_t lo,
                       std::size_t hi);

// Writes text to path through a temporary name, renamed at the end (a failed run leaves an
// earlier file whole); false, with the reason on stderr, when it could not.
bool write_file(const std::string& path, const std::string& text);

// Prints the markdown report and, when out_path is not empty, writes it there (write_file).
// Returns main's exit status: 0, or 1 when the file could not be written.
int print_report(const std::string& report, const std::string& out_path);

// A benchmark's main: returns run(argc, argv), or prints "program: what" and returns 1 when it
// throws.
int guarded_main(const char* program, int (*run)(int, char**), int argc, char** argv);

}  // namespace hetcache::bench
