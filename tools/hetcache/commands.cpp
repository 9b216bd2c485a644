// stats, plan, calibrate, the shared database opening, and --version.
#include "commands.hpp"

#include <hetcache/hetcache.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "options.hpp"
#include "progress.hpp"

namespace hetcache::cli {

std::unique_ptr<EmbeddingCache> open_database(const std::string& dir, const std::string& collection,
                                              std::size_t dim, Access access,
                                              std::size_t memory_mib, std::size_t bulk_ingest_rows,
                                              StorageType stored_as) {
  const auto stored = stored_dimension(dir, collection);
  if (dim == 0) {
    if (!stored) {
      const auto held = database_collections(dir);
      if (held.empty())
        throw Error(ErrorCode::InvalidArgument, "'" + dir + "' is not a hetcache database");
      std::string names;
      for (const auto& c : held) names += (names.empty() ? "" : ", ") + c.name;
      throw Error(ErrorCode::InvalidArgument, "the database '" + dir + "' holds no collection '" +
                                                  collection + "' (it holds: " + names + ")");
    }
    dim = *stored;
  } else if (stored && *stored != dim) {
    throw Error(ErrorCode::InvalidArgument, "dimension mismatch: the input has dimension " +
                                                std::to_string(dim) + ", the collection '" +
                                                collection + "' of the database '" + dir +
                                                "' holds dimension " + std::to_string(*stored));
  }
  CacheOptions options;
  options.dim = dim;
  options.max_bytes = memory_mib << 20;
  RocksDbOptions rocks;
  rocks.path = dir;
  rocks.collection = collection;
  rocks.bulk_ingest_rows = bulk_ingest_rows;
  if (access == Access::ReadOnly)
    rocks.mode = database_has_writer(dir) ? OpenMode::Follower : OpenMode::ReadOnly;
  options.durable = rocks;
  options.durable_storage = stored_as;
  return std::make_unique<EmbeddingCache>(options);
}

void add_collection_option(CLI::App* command, std::string& collection) {
  command->add_option("--collection", collection,
                      "the collection (one per embedding model, each with its own dimension; "
                      "default \"default\")");
}

std::size_t rows_per_batch(std::size_t dim, std::size_t max_rows, std::size_t max_bytes) {
  return std::clamp<std::size_t>(max_bytes / (dim * sizeof(float)), 1, max_rows);
}

std::string version_text() {
  std::string paths, runs;
  for (const Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    paths += (paths.empty() ? "" : " ") + std::string(to_string(isa));
    if (isa_supported(isa)) runs += (runs.empty() ? "" : " ") + std::string(to_string(isa));
  }
  // Opening the GPU tier loads the CUDA plugin and the device, so --version tells exactly why a
  // GPU is not used here.
  const GpuStats gpu = SimilarityEngine().gpu_stats();
  return std::string("hetcache ") + version() + "\nSIMD paths: " + paths +
         " (this CPU runs: " + runs + ")\nCUDA: " +
         (built_with_cuda() ? "built (the plugin libhetcache_cuda.so, loaded at run time)"
                            : "not built (CPU tiers only)") +
         "\nGPU tier: " + (gpu.available ? gpu.device : "absent: " + gpu.reason);
}

namespace {

// One block per collection (only `collection` when given): dimension, live vectors (every
// checksum verified), expired, corrupt; then the directory's size.
void run_stats(const std::string& db, const std::string& collection, bool quiet) {
  std::vector<std::string> names;
  if (!collection.empty()) {
    names.push_back(collection);
  } else {
    for (const auto& c : database_collections(db)) names.push_back(c.name);
    if (names.empty())
      throw Error(ErrorCode::InvalidArgument, "'" + db + "' is not a hetcache database");
  }
  std::printf("database   %s\n", db.c_str());
  for (const auto& name : names) {
    auto cache = open_database(db, name, 0, Access::ReadOnly, 16);
    Progress progress("stats " + name, cache->estimated_durable_count().value_or(0), quiet);
    std::size_t read = 0;
    const ScanCounts counts =
        cache->scan([&](std::span<const std::string>, std::span<const std::int64_t>,
                        MatrixView rows) { progress.update(read += rows.rows()); },
                    rows_per_batch(cache->dim(), 65536));
    progress.finish(read);
    std::printf(
        "collection %s\ndimension  %zu\nvectors    %llu\nexpired    %llu\ncorrupt    %llu\n",
        name.c_str(), cache->dim(), static_cast<unsigned long long>(counts.visited),
        static_cast<unsigned long long>(counts.expired),
        static_cast<unsigned long long>(counts.corrupt));
  }
  std::uintmax_t bytes = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(db))
    if (e.is_regular_file()) bytes += e.file_size();
  std::printf("disk       %.1f MiB\n", double(bytes) / (1 << 20));
}

OpKind parse_op(const std::string& text) {
  for (const OpKind op :
       {OpKind::Get, OpKind::GetBatch, OpKind::Put, OpKind::PutBatch, OpKind::Similarity})
    if (text == to_string(op)) return op;
  throw Error(ErrorCode::InvalidArgument,
              "unknown --op '" + text + "' (get, get_batch, put, put_batch, similarity)");
}

}  // namespace

void add_stats(CLI::App& app) {
  auto* c = app.add_subcommand("stats",
                               "Each collection's dimension and vector count, and the size of a "
                               "database (every value's checksum is verified; opened read-only)");
  static std::string db, collection;
  static bool quiet = false;
  c->add_option("--db", db, "database directory")->required();
  c->add_option("--collection", collection, "only this collection (default: every one)");
  c->add_flag("--quiet", quiet, "no progress output");
  c->callback([] { run_stats(db, collection, quiet); });
}

void add_plan(CLI::App& app) {
  auto* c = app.add_subcommand("plan", "Explain the tier the scheduler picks for a shape");
  static std::string op = "similarity", strategy = "adaptive";
  static std::uint64_t items = 100000, queries = 16, dim = 768;
  static bool durable = false;
  c->add_option("--op", op, "get, get_batch, put, put_batch or similarity (default)");
  add_count(c, "--items", items, 1, 1'000'000'000'000,
            "keys, or candidates for similarity (default 100000)");
  add_count(c, "--queries", queries, 1, 1'000'000'000, "queries of a similarity (default 16)");
  add_count(c, "--dim", dim, 1, 1 << 20, "dimension, floats per vector (default 768)");
  c->add_option("--strategy", strategy, "fiber-only, cpu-only, gpu-only, hybrid, adaptive");
  c->add_flag("--durable", durable, "gets read through a durable store");
  c->callback([] {
    Work w;
    w.op = parse_op(op);
    w.items = items;
    w.queries = queries;
    w.dim = dim;
    w.durable = durable;
    SchedulerConfig config;
    config.strategy = parse_strategy(strategy);
    Scheduler scheduler(config);
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
