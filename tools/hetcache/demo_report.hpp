// The demo's and bench's report: the measured cells and how they are printed (markdown tables
// beside the seed's claims) and written (CSV, JSON). Measuring lives in demo.cpp.
#pragma once

#include <hetcache/hetcache.hpp>

#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

namespace hetcache::cli {

// The mixed workload's vectors: the size its three phases are recorded under.
inline constexpr std::size_t kMixedVectors = 1000;

// One strategy's median in one table cell.
struct Cell {
  std::string table;  // "cpu", "io", "mixed-ingest", "mixed-search" or "mixed-access"
  std::size_t size = 0;
  Strategy strategy = Strategy::Hybrid;
  double ms = 0;
  std::string ran_on;  // Adaptive's cells: the tiers it chose while measured ("cpu x40 fiber x2")
};

// The strategies measured, in enum order, which is also the order the tables and the CSV list them.
std::vector<Strategy> strategies(bool gpu);

// A markdown table of one sized table ("cpu" or "io"): every strategy, the best, what Adaptive ran
// on, and the seed's claims for the seed's sizes.
void print_size_table(const char* title, const char* workload, const std::vector<Cell>& cells,
                      const std::string& table, const std::vector<std::size_t>& sizes, bool gpu);
// The mixed workload's table and what Adaptive ran on in each phase.
void print_mixed(const std::vector<Cell>& cells, bool gpu);

// Every cell as CSV (table,size,strategy,ms) or as a JSON array of objects; Adaptive's objects
// carry "ran_on".
void write_csv(std::ostream& out, const std::vector<Cell>& cells);
void write_json(std::ostream& out, const std::vector<Cell>& cells);

}  // namespace hetcache::cli
