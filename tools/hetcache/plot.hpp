// The bench's plot: time against batch size per strategy, drawn by gnuplot from the bench's CSV.
#pragma once

#include <string>

namespace hetcache::cli {

// Throws Error(Unsupported) when gnuplot is not installed (checked before a long measurement).
void require_gnuplot();

// Reads the bench CSV (table,size,strategy,ms) at csv_path and writes a PNG of two log-log panels,
// the CPU table (candidates) and the I/O table (keys), one line per strategy found in the file.
// Throws Error naming gnuplot's first complaint when it fails.
void plot_bench_csv(const std::string& csv_path, const std::string& png_path,
                    const std::string& subtitle);

}  // namespace hetcache::cli
