// hetcache search: the top-k of each query over every vector of a database, opened read-only.
// Everything the command is given is checked before the scan (k, metric, strategy, the output's
// name and place, every query row); the hits go to a temporary file that replaces --out only when
// complete.
#include <hetcache/hetcache.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include "commands.hpp"
#include "file_names.hpp"
#include "hits_output.hpp"
#include "options.hpp"
#include "output_file.hpp"
#include "progress.hpp"
#include "vector_file.hpp"

namespace hetcache::cli {
namespace {

// The most hits per query; a k above the database's size gives that many.
constexpr std::uint64_t kMaxK = 100000;

struct SearchOptions {
  std::string db, collection = "default", queries, metric = "cosine", strategy = "adaptive", out;
  std::uint64_t k = 10;
  bool allow_fallback = false, quiet = false;
};

enum class HitsFormat { JsonLines, Npy };

HitsFormat format_of(const std::string& out) {
  if (out.empty()) return HitsFormat::JsonLines;
  const std::string ext = lower_extension(out);
  std::error_code ec;
  const auto status = std::filesystem::status(out, ec);
  // A device or a pipe (/dev/stdout) has no extension to go by: JSON lines, as on stdout.
  if (ext.empty() && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status) &&
      !std::filesystem::is_directory(status))
    return HitsFormat::JsonLines;
  if (ext == ".npy") return HitsFormat::Npy;
  if (ext == ".jsonl" || ext == ".ndjson" || ext == ".json") return HitsFormat::JsonLines;
  throw Error(ErrorCode::InvalidArgument, "--out " + out + ": unknown extension '" + ext +
                                              "' (.npy for a NumPy array, .jsonl for JSON lines)");
}

void run_search(const SearchOptions& o) {
  const Metric metric = parse_metric(o.metric);
  SchedulerConfig config;
  config.strategy = parse_strategy(o.strategy);
  const HitsFormat format = format_of(o.out);
  // Opened before the scan, so a path that cannot be written fails at once.
  std::optional<OutputFile> file;
  if (!o.out.empty()) file.emplace(o.out);
  VectorReader reader(o.queries);
  auto cache = open_database(o.db, o.collection, 0, Access::ReadOnly);
  if (reader.dim() != cache->dim())
    throw Error(ErrorCode::InvalidArgument,
                "dimension mismatch: the queries have dimension " + std::to_string(reader.dim()) +
                    ", the database holds dimension " + std::to_string(cache->dim()));
  std::vector<float> queries;
  reader.read(reader.rows(), queries);
  if (reader.dtype() == "float64")
    std::fprintf(stderr, "hetcache: note: %s is float64; searched as float32\n", o.queries.c_str());
  const std::size_t q = reader.rows(), dim = reader.dim(), k = o.k;
  const MatrixView query_view(queries.data(), q, dim);
  Scheduler scheduler(config);
  if (config.strategy == Strategy::GpuOnly && !scheduler.gpu_available() && !o.allow_fallback)
    throw Error(ErrorCode::Unsupported, "--strategy gpu-only: no GPU tier here (" +
                                            scheduler.engine().gpu_stats().reason +
                                            "); add --allow-fallback to search on the CPU instead");
  // The library searches the database batch by batch, each batch on the tier the scheduler picks.
  Progress progress("search", cache->estimated_durable_count().value_or(0), o.quiet);
  const Scheduler::DatabaseHits found = scheduler.search_database(
      *cache, query_view, k, metric, [&](std::uint64_t rows) { progress.update(rows); });
  progress.finish(found.counts.visited);
  const ScanCounts& counts = found.counts;
  // As many columns as there are hits: k, or the database's size when it holds fewer.
  const std::size_t columns = std::min<std::size_t>(k, counts.visited);
  std::ostream& out = file ? file->stream() : std::cout;
  if (format == HitsFormat::Npy)
    write_hits_npy(out, found.hits, columns);
  else
    write_hits_jsonl(out, found.hits);
  if (file) file->commit();
  std::fprintf(stderr,
               "searched %zu queries over %llu vectors (%llu expired, %llu corrupt skipped)", q,
               static_cast<unsigned long long>(counts.visited),
               static_cast<unsigned long long>(counts.expired),
               static_cast<unsigned long long>(counts.corrupt));
  for (const Tier tier : kAllTiers)
    if (const auto n = found.batches[static_cast<std::size_t>(tier)])
      std::fprintf(stderr, ", %llu batch(es) on %s", static_cast<unsigned long long>(n),
                   std::string(to_string(tier)).c_str());
  std::fputc('\n', stderr);
}

}  // namespace

void add_search(CLI::App& app) {
  auto* c = app.add_subcommand("search",
                               "Top-k of each query over every vector in a database (opened "
                               "read-only), as JSON lines or .npy");
  static SearchOptions o;
  c->add_option("--db", o.db, "database directory")->required();
  add_collection_option(c, o.collection);
  c->add_option("--queries", o.queries, "queries: .npy (2-D, or 1-D for one query), .fvecs or .csv")
      ->required();
  add_count(c, "--k", o.k, 1, kMaxK,
            "hits per query, up to 100000 (default 10; at most the database's size)");
  c->add_option("--metric", o.metric, "cosine (default), dot or l2");
  c->add_option("--strategy", o.strategy,
                "fiber-only, cpu-only, gpu-only, hybrid, adaptive (default)");
  c->add_flag("--allow-fallback", o.allow_fallback,
              "with --strategy gpu-only: search on the CPU when there is no GPU (default: error)");
  c->add_option("--out", o.out,
                "write the hits here: FILE.npy (a structured array of key and score) or "
                "FILE.jsonl (JSON lines); replaced only when complete (default: JSON lines on "
                "stdout)");
  c->add_flag("--quiet", o.quiet, "no progress output");
  c->callback([] { run_search(o); });
}

}  // namespace hetcache::cli
