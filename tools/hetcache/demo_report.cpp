// The demo's report (demo_report.hpp): markdown tables, CSV and JSON from the measured cells.
#include "demo_report.hpp"

#include <array>
#include <cstdio>
#include <map>

namespace hetcache::cli {
namespace {

// One recorded table cell (an empty one when absent).
Cell cell(const std::vector<Cell>& cells, const std::string& table, std::size_t size,
          Strategy strategy) {
  for (const Cell& c : cells)
    if (c.table == table && c.size == size && c.strategy == strategy) return c;
  return {};
}

double cell_ms(const std::vector<Cell>& cells, const std::string& table, std::size_t size,
               Strategy strategy) {
  return cell(cells, table, size, strategy).ms;
}

// The seed's claimed numbers (ms), for the Tokio-only / Rayon-only / Hybrid columns.
const std::map<std::size_t, std::array<double, 3>> kSeedCpu = {
    {100, {15, 8, 8}}, {500, {75, 25, 25}}, {1000, {150, 45, 45}}, {2000, {300, 85, 85}}};
const std::map<std::size_t, std::array<double, 3>> kSeedIo = {
    {50, {12, 15, 12}}, {200, {45, 55, 45}}, {500, {110, 140, 110}}, {1000, {220, 280, 220}}};

}  // namespace

void print_size_table(const char* title, const char* workload, const std::vector<Cell>& cells,
                      const std::string& table, const std::vector<std::size_t>& sizes, bool gpu) {
  const auto& seed = table == "cpu" ? kSeedCpu : kSeedIo;
  std::printf("\n### %s\n%s\n\n| items |", title, workload);
  for (const Strategy s : strategies(gpu)) std::printf(" %s |", std::string(to_string(s)).c_str());
  std::printf(" best | adaptive ran on | seed claimed (tokio / rayon / hybrid) |\n|---|");
  for (std::size_t i = 0; i < strategies(gpu).size(); ++i) std::printf("---|");
  std::printf("---|---|---|\n");
  for (const std::size_t n : sizes) {
    std::printf("| %zu |", n);
    double best = 1e300;
    std::string best_name;
    for (const Strategy s : strategies(gpu)) {
      const double ms = cell_ms(cells, table, n, s);
      if (ms < best) {
        best = ms;
        best_name = std::string(to_string(s));
      }
      std::printf(" %.3f ms |", ms);
    }
    const auto it = seed.find(n);
    std::printf(" %s | %s |", best_name.c_str(),
                cell(cells, table, n, Strategy::Adaptive).ran_on.c_str());
    if (it != seed.end())
      std::printf(" %.0f / %.0f / %.0f ms |\n", it->second[0], it->second[1], it->second[2]);
    else
      std::printf(" - |\n");
  }
}

void print_mixed(const std::vector<Cell>& cells, bool gpu) {
  std::printf(
      "\n### Mixed workload: 100 documents x 10 embeddings (d = 768, RocksDB)\n\n"
      "| strategy | ingestion | similarity search | random access | total | vs "
      "fiber-only | seed claimed total |\n|---|---|---|---|---|---|---|\n");
  const std::map<std::string, const char*> seed = {{"fiber-only", "715 ms (tokio-only)"},
                                                   {"cpu-only", "505 ms (rayon-only)"},
                                                   {"hybrid", "445 ms"},
                                                   {"adaptive", "458 ms"}};
  double baseline = 0;
  for (const Strategy s : strategies(gpu)) {
    const std::string name(to_string(s));
    const double i = cell_ms(cells, "mixed-ingest", kMixedVectors, s);
    const double q = cell_ms(cells, "mixed-search", kMixedVectors, s);
    const double a = cell_ms(cells, "mixed-access", kMixedVectors, s);
    const double total = i + q + a;
    if (s == Strategy::FiberOnly) baseline = total;
    const auto it = seed.find(name);
    std::printf("| %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %.2fx | %s |\n", name.c_str(), i, q,
                a, total, total > 0 ? baseline / total : 0.0, it == seed.end() ? "-" : it->second);
  }
  std::printf("\nAdaptive ran on: ingestion %s; search %s; random access %s\n",
              cell(cells, "mixed-ingest", kMixedVectors, Strategy::Adaptive).ran_on.c_str(),
              cell(cells, "mixed-search", kMixedVectors, Strategy::Adaptive).ran_on.c_str(),
              cell(cells, "mixed-access", kMixedVectors, Strategy::Adaptive).ran_on.c_str());
}

std::vector<Strategy> strategies(bool gpu) {
  std::vector<Strategy> s = {Strategy::FiberOnly, Strategy::CpuOnly, Strategy::Hybrid,
                             Strategy::Adaptive};
  if (gpu) s.insert(s.begin() + 2, Strategy::GpuOnly);
  return s;
}

void write_csv(std::ostream& out, const std::vector<Cell>& cells) {
  out << "table,size,strategy,ms\n";
  for (const Cell& c : cells)
    out << c.table << ',' << c.size << ',' << to_string(c.strategy) << ',' << c.ms << '\n';
}

void write_json(std::ostream& out, const std::vector<Cell>& cells) {
  out << "[";
  for (std::size_t i = 0; i < cells.size(); ++i)
    out << (i ? "," : "") << "{\"table\":\"" << cells[i].table << "\",\"size\":" << cells[i].size
        << ",\"strategy\":\"" << to_string(cells[i].strategy) << "\",\"ms\":" << cells[i].ms
        << (cells[i].ran_on.empty() ? "" : ",\"ran_on\":\"" + cells[i].ran_on + "\"") << "}";
  out << "]\n";
}

}  // namespace hetcache::cli
