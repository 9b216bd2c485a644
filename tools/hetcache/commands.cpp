// ingest, search, stats, plan and calibrate.
#include "commands.hpp"

#include <hetcache/hetcache.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "hits_output.hpp"
#include "progress.hpp"
#include "vector_file.hpp"

namespace hetcache::cli {

std::unique_ptr<EmbeddingCache> open_database(const std::string& dir, std::size_t dim,
                                              std::size_t memory_mib) {
  const auto stored = stored_dimension(dir);
  if (dim == 0) {
    if (!stored)
      throw Error(ErrorCode::InvalidArgument, "'" + dir + "' is not a hetcache database");
    dim = *stored;
  } else if (stored && *stored != dim) {
    throw Error(ErrorCode::InvalidArgument, "dimension mismatch: the input has dimension " +
                                                std::to_string(dim) + ", the database '" + dir +
                                                "' holds dimension " + std::to_string(*stored));
  }
  CacheOptions options;
  options.dim = dim;
  options.max_bytes = memory_mib << 20;
  RocksDbOptions rocks;
  rocks.path = dir;
  options.durable = rocks;
  return std::make_unique<EmbeddingCache>(options);
}

namespace {

void run_ingest(const std::string& db, const std::string& input, const std::string& keys_file,
                std::int64_t ttl_seconds, std::size_t batch, bool quiet) {
  VectorReader reader(input);
  KeyReader keys(keys_file, input, reader.rows());
  auto cache = open_database(db, reader.dim());
  Ttl ttl;
  if (ttl_seconds > 0) ttl = std::chrono::milliseconds(ttl_seconds * 1000);
  Progress progress("ingest", reader.rows(), quiet);
  std::size_t done = 0, written = 0, skipped = 0;
  std::vector<float> rows;
  std::vector<std::string> batch_keys;
  const auto start = std::chrono::steady_clock::now();
  while (done < reader.rows()) {
    rows.clear();
    const std::size_t n = reader.read(batch, rows);
    keys.next(n, batch_keys);
    // Resumable: keys already in the database are skipped, the rest written as one batch (one
    // RocksDB write batch: a crash leaves whole batches only).
    std::vector<std::string> todo_keys;
    std::vector<float> todo_rows;
    for (std::size_t i = 0; i < n; ++i) {
      if (cache->contains(batch_keys[i])) {
        ++skipped;
        continue;
      }
      todo_keys.push_back(batch_keys[i]);
      todo_rows.insert(todo_rows.end(), rows.begin() + std::ptrdiff_t(i * reader.dim()),
                       rows.begin() + std::ptrdiff_t((i + 1) * reader.dim()));
    }
    if (!todo_keys.empty()) {
      cache->put_batch(todo_keys, MatrixView(todo_rows.data(), todo_keys.size(), reader.dim()),
                       ttl);
      written += todo_keys.size();
    }
    done += n;
    progress.update(done);
  }
  progress.finish(done);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "ingested %zu vectors (dim %zu, %s) into %s: %zu written, %zu already present, "
      "%.2f s, %.0f vectors/s\n",
      done, reader.dim(), reader.dtype().c_str(), db.c_str(), written, skipped, s,
      s > 0 ? double(done) / s : 0.0);
}

void run_search(const std::string& db, const std::string& queries_file, std::size_t k,
                const std::string& metric_name, const std::string& strategy_name,
                const std::string& out_path, bool quiet) {
  if (k == 0) throw Error(ErrorCode::InvalidArgument, "--k must be >= 1");
  const Metric metric = parse_metric(metric_name);
  VectorReader reader(queries_file);
  auto cache = open_database(db, 0);
  if (reader.dim() != cache->dim())
    throw Error(ErrorCode::InvalidArgument,
                "dimension mismatch: the queries have dimension " + std::to_string(reader.dim()) +
                    ", the database holds dimension " + std::to_string(cache->dim()));
  std::vector<float> queries;
  reader.read(reader.rows(), queries);
  const std::size_t q = reader.rows(), dim = reader.dim();
  const MatrixView query_view(queries.data(), q, dim);
  SchedulerConfig config;
  config.strategy = parse_strategy(strategy_name);
  Scheduler scheduler(config);
  // The output is opened before the scan, so a path that cannot be written fails at once.
  const bool npy = std::filesystem::path(out_path).extension() == ".npy";
  std::ofstream file;
  if (!out_path.empty()) {
    file.open(out_path, std::ios::binary | std::ios::trunc);
    if (!file) throw Error(ErrorCode::InvalidArgument, out_path + ": cannot write");
  }
  // Each batch of the database is searched on the tier the scheduler picks; the best k of every
  // batch are merged per query (the batch's keys are kept only for its hits).
  QueryHits best(q);
  // Ranked as Hits are: for L2 the score is a distance (smaller first); ties by key.
  const bool smaller_is_better = metric == Metric::L2;
  const auto better = [smaller_is_better](const KeyHit& a, const KeyHit& b) {
    if (a.score != b.score) return smaller_is_better ? a.score < b.score : a.score > b.score;
    return a.key < b.key;
  };
  std::size_t scanned = 0;
  std::map<Tier, std::size_t> tiers;
  Progress progress("search", cache->estimated_durable_count().value_or(0), quiet);
  const ScanCounts counts = cache->scan(
      [&](std::span<const std::string> keys, MatrixView rows) {
        Decision decision;
        const Hits hits =
            scheduler.search(query_view, rows, std::min(k, rows.rows()), metric, &decision);
        ++tiers[decision.tier];
        for (std::size_t i = 0; i < q; ++i) {
          const auto scores = hits.scores(i);
          const auto ids = hits.ids(i);
          for (std::size_t j = 0; j < scores.size(); ++j) {
            if (ids[j] < 0) continue;  // fewer candidates than k
            best[i].push_back({keys[static_cast<std::size_t>(ids[j])], scores[j]});
          }
          std::sort(best[i].begin(), best[i].end(), better);
          if (best[i].size() > k) best[i].resize(k);
        }
        scanned += rows.rows();
        progress.update(scanned);
      },
      65536);
  progress.finish(scanned);
  std::ostream& out = out_path.empty() ? std::cout : file;
  if (npy)
    write_hits_npy(out, best, k);
  else
    write_hits_jsonl(out, best);
  if (!out.flush())
    throw Error(ErrorCode::InvalidArgument,
                (out_path.empty() ? "stdout" : out_path) + ": write failed");
  std::fprintf(stderr,
               "searched %zu queries over %llu vectors (%llu expired, %llu corrupt skipped)", q,
               static_cast<unsigned long long>(counts.visited),
               static_cast<unsigned long long>(counts.expired),
               static_cast<unsigned long long>(counts.corrupt));
  for (const auto& [tier, n] : tiers)
    std::fprintf(stderr, ", %zu batch(es) on %s", n, std::string(to_string(tier)).c_str());
  std::fputc('\n', stderr);
}

void run_stats(const std::string& db, bool quiet) {
  auto cache = open_database(db, 0, 16);
  Progress progress("stats", cache->estimated_durable_count().value_or(0), quiet);
  std::size_t read = 0;
  const ScanCounts counts = cache->scan(
      [&](std::span<const std::string>, MatrixView rows) { progress.update(read += rows.rows()); },
      65536);
  progress.finish(read);
  std::uintmax_t bytes = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(db))
    if (e.is_regular_file()) bytes += e.file_size();
  std::printf(
      "database   %s\ndimension  %zu\nvectors    %llu\nexpired    %llu\ncorrupt    %llu\n"
      "disk       %.1f MiB\n",
      db.c_str(), cache->dim(), static_cast<unsigned long long>(counts.visited),
      static_cast<unsigned long long>(counts.expired),
      static_cast<unsigned long long>(counts.corrupt), double(bytes) / (1 << 20));
}

OpKind parse_op(const std::string& text) {
  for (const OpKind op :
       {OpKind::Get, OpKind::GetBatch, OpKind::Put, OpKind::PutBatch, OpKind::Similarity})
    if (text == to_string(op)) return op;
  throw Error(ErrorCode::InvalidArgument,
              "unknown op '" + text + "' (get, get_batch, put, put_batch, similarity)");
}

}  // namespace

void add_ingest(CLI::App& app) {
  auto* c = app.add_subcommand("ingest",
                               "Store vectors from a .npy (f32/f16), .fvecs or .csv file "
                               "in a database; re-running skips keys already present");
  static std::string db, input, keys;
  static std::int64_t ttl = 0;
  static std::size_t batch = 4096;
  static bool quiet = false;
  c->add_option("--db", db, "database directory (created when missing)")->required();
  c->add_option("--input", input, "vectors: .npy (float32 or float16), .fvecs or .csv")->required();
  c->add_option("--keys", keys, "one key per line (default: <file stem>:<row>)");
  c->add_option("--ttl", ttl, "seconds until the vectors expire (default: never)")
      ->check(CLI::PositiveNumber);
  c->add_option("--batch", batch, "vectors per write batch (default 4096)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  c->add_flag("--quiet", quiet, "no progress output");
  c->callback([] { run_ingest(db, input, keys, ttl, batch, quiet); });
}

void add_search(CLI::App& app) {
  auto* c = app.add_subcommand("search",
                               "Top-k of each query over every vector in a database, as "
                               "JSON lines or .npy");
  static std::string db, queries, metric = "cosine", strategy = "adaptive", out;
  static std::size_t k = 10;
  static bool quiet = false;
  c->add_option("--db", db, "database directory")->required();
  c->add_option("--queries", queries, "queries: .npy, .fvecs or .csv")->required();
  c->add_option("--k", k, "hits per query (default 10)");
  c->add_option("--metric", metric, "cosine (default), dot or l2");
  c->add_option("--strategy", strategy, "fiber-only, cpu-only, gpu-only, hybrid, adaptive");
  c->add_option(
      "--out", out,
      "write the hits here: FILE.npy (a structured array of key and score) or JSON lines (any "
      "other name); default: JSON lines on stdout");
  c->add_flag("--quiet", quiet, "no progress output");
  c->callback([] { run_search(db, queries, k, metric, strategy, out, quiet); });
}

void add_stats(CLI::App& app) {
  auto* c = app.add_subcommand("stats",
                               "Dimension, vector count and size of a database (every "
                               "value's checksum is verified)");
  static std::string db;
  static bool quiet = false;
  c->add_option("--db", db, "database directory")->required();
  c->add_flag("--quiet", quiet, "no progress output");
  c->callback([] { run_stats(db, quiet); });
}

void add_plan(CLI::App& app) {
  auto* c = app.add_subcommand("plan", "Explain the tier the scheduler picks for a shape");
  static std::string op = "similarity", strategy = "adaptive";
  static std::size_t items = 100000, queries = 16, dim = 768;
  static bool durable = false;
  c->add_option("--op", op, "get, get_batch, put, put_batch or similarity (default)");
  c->add_option("--items", items, "keys, or candidates for similarity (default 100000)");
  c->add_option("--queries", queries, "queries of a similarity (default 16)");
  c->add_option("--dim", dim, "dimension (default 768)");
  c->add_option("--strategy", strategy, "fiber-only, cpu-only, gpu-only, hybrid, adaptive");
  c->add_flag("--durable", durable, "gets read through a durable tier");
  c->callback([] {
    SchedulerConfig config;
    config.strategy = parse_strategy(strategy);
    Scheduler scheduler(config);
    Work w;
    w.op = parse_op(op);
    w.items = items;
    w.queries = queries;
    w.dim = dim;
    w.durable = durable;
    std::fputs(scheduler.decide(w).explain().c_str(), stdout);
  });
}

void add_calibrate(CLI::App& app) {
  auto* c = app.add_subcommand("calibrate",
                               "Measure this machine for the Adaptive scheduler now "
                               "and rewrite its cached calibration");
  c->callback([] {
    SchedulerConfig config;
    config.strategy = Strategy::Adaptive;
    Scheduler scheduler(config);
    const auto start = std::chrono::steady_clock::now();
    scheduler.recalibrate();
    std::printf("calibrated in %.2f s\nmachine  %s\nfile     %s\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                scheduler.machine_key().c_str(), scheduler.calibration_file().c_str());
  });
}

}  // namespace hetcache::cli
