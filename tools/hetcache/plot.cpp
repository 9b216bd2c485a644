#include "plot.hpp"

#include <hetcache/error.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace hetcache::cli {
namespace {

// A gnuplot single-quoted string: a quote inside is written twice.
std::string gnuplot_string(std::string_view text) {
  std::string out = "'";
  for (const char c : text) {
    out.push_back(c);
    if (c == '\'') out.push_back('\'');
  }
  return out + "'";
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::stringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty() && ::access((std::filesystem::path(dir) / program).c_str(), X_OK) == 0)
      return true;
  return false;
}

// The strategies in the CSV, in their first-seen order. The lines join consecutive rows of a
// series (the other rows are undefined points, which break a line), so the bench writes each
// series' rows together, by size.
std::vector<std::string> strategies_in(const std::string& csv_path) {
  std::ifstream in(csv_path);
  if (!in) throw Error(ErrorCode::InvalidArgument, csv_path + ": cannot read");
  std::string line;
  if (!std::getline(in, line) || line != "table,size,strategy,ms")
    throw Error(ErrorCode::InvalidArgument, csv_path + ": not a hetcache bench CSV");
  std::vector<std::string> names;
  while (std::getline(in, line)) {
    const auto first = line.find(','), second = line.find(',', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string name = line.substr(second + 1, line.find(',', second + 1) - second - 1);
    bool known = false;
    for (const auto& n : names) known = known || n == name;
    if (!known) names.push_back(name);
  }
  return names;
}

std::string panel(const std::string& csv, const std::vector<std::string>& names,
                  const std::string& table, const std::string& title, const std::string& xlabel) {
  std::string out =
      "set title " + gnuplot_string(title) + "\nset xlabel " + gnuplot_string(xlabel) + "\nplot ";
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += (i ? ", \\\n     " : "") + gnuplot_string(csv) + " using 2:((strcol(1) eq " +
           gnuplot_string(table) + " && strcol(3) eq " + gnuplot_string(names[i]) +
           ") ? $4 : 1/0) with linespoints title " + gnuplot_string(names[i]);
  }
  return out + "\n";
}

}  // namespace

void require_gnuplot() {
  if (!on_path("gnuplot"))
    throw Error(ErrorCode::Unsupported,
                "--plot needs gnuplot, which is not installed (apt-get install gnuplot-nox; "
                "scripts/deps.sh installs it)");
}

void plot_bench_csv(const std::string& csv_path, const std::string& png_path,
                    const std::string& subtitle) {
  require_gnuplot();
  const auto names = strategies_in(csv_path);
  const std::string script =
      "set terminal pngcairo size 1400,560 font 'sans,10'\n"
      "set termoption noenhanced\n"  // underscores are text, not subscripts
      "set output " +
      gnuplot_string(png_path) +
      "\n"
      "set datafile separator ','\n"
      "set logscale xy\nset grid xtics ytics mxtics mytics lc rgb '#dddddd'\n"
      "set key top left\nset ylabel 'median time (ms, log)'\n"
      "set multiplot layout 1,2 title " +
      gnuplot_string("hetcache bench: " + subtitle) + "\n" +
      panel(csv_path, names, "cpu", "CPU-intensive: 64 queries x N candidates, d = 768, top-10",
            "candidates N (log)") +
      panel(csv_path, names, "io", "I/O-intensive: get_batch of N random keys via RocksDB",
            "keys N (log)") +
      "unset multiplot\n";
  // The script and gnuplot's messages go through temporary files beside the PNG.
  const std::string script_path = png_path + ".gp", log_path = png_path + ".log";
  {
    std::ofstream f(script_path, std::ios::trunc);
    if (!(f << script).flush())
      throw Error(ErrorCode::InvalidArgument, script_path + ": cannot write");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::string program = "gnuplot";
  char* argv[] = {program.data(), const_cast<char*>(script_path.c_str()), nullptr};
  pid_t pid = 0;
  const int spawned = ::posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  const bool ran = spawned == 0 && ::waitpid(pid, &status, 0) == pid;
  std::string first_complaint;
  {
    std::ifstream log(log_path);
    for (std::string line; std::getline(log, line);)
      if (first_complaint.empty() && line.find_first_not_of(" ^") != std::string::npos)
        first_complaint = line;
  }
  std::error_code ec;
  std::filesystem::remove(script_path, ec);
  std::filesystem::remove(log_path, ec);
  if (!ran || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error(ErrorCode::InvalidArgument,
                "gnuplot failed to draw " + png_path +
                    (first_complaint.empty() ? std::string() : ": " + first_complaint));
}

}  // namespace hetcache::cli
