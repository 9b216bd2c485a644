// hetcache ingest: vectors from a file into a database. The whole input is checked (header, size,
// every row, the keys) before the database is opened, so a bad file writes nothing; then each
// batch goes in whole -- a large input in batches of up to 1 GiB written as table files (bulk
// ingest), a small one (or --online) in 4096-row write batches through the write-ahead log -- so
// an interrupted ingest leaves whole batches and resumes.
// Keys already present are compared (EmbeddingCache::ingest_batch): the same vector is left alone,
// a different one stops the ingest before its batch unless --on-conflict says otherwise.
#include <hetcache/hetcache.hpp>

#include <chrono>
#include <cstdio>

#include "commands.hpp"
#include "key_file.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "vector_file.hpp"

namespace hetcache::cli {
namespace {

// The longest --ttl: 100 years. Longer is refused rather than silently capped.
constexpr std::uint64_t kMaxTtlSeconds = 100ull * 365 * 24 * 3600;
// Inputs of at least RocksDbOptions::bulk_ingest_rows rows go in as table files, in batches of at
// most this much float32 data.
constexpr std::size_t kBulkBatchBytes = std::size_t{1} << 30;
constexpr std::size_t kOnlineBatchRows = 4096;

struct IngestOptions {
  std::string db, collection = "default", input, keys;
  std::uint64_t ttl_seconds = 0;  // 0: never expires
  std::uint64_t batch = 0;        // 0: by the input's size (see --batch)
  std::string on_conflict = "error";
  std::string dtype = "f32";
  bool online = false;
  bool quiet = false;
};

OnConflict parse_on_conflict(const std::string& text) {
  if (text == "error") return OnConflict::Error;
  if (text == "overwrite") return OnConflict::Overwrite;
  if (text == "skip") return OnConflict::Skip;
  throw Error(ErrorCode::InvalidArgument,
              "--on-conflict must be error, overwrite or skip, got '" + text + "'");
}

void run_ingest(const IngestOptions& o) {
  const OnConflict on_conflict = parse_on_conflict(o.on_conflict);
  StorageType stored_as = StorageType::F32;
  try {
    stored_as = parse_storage_type(o.dtype);
  } catch (const Error&) {
    throw Error(ErrorCode::InvalidArgument,
                "--dtype must be f32, f16, bf16 or i8, got '" + o.dtype + "'");
  }
  std::size_t dim = 0, rows = 0;
  {
    // Pass 1: every row read and checked before anything is written.
    VectorReader check(o.input);
    dim = check.dim();
    rows = check.rows();
    Progress progress("check", rows, o.quiet);
    std::vector<float> buffer;
    for (std::size_t done = 0; done < rows;) {
      buffer.clear();
      done += check.read(rows_per_batch(dim, rows), buffer);
      progress.update(done);
    }
    progress.finish(rows);
    if (check.dtype() == "float64")
      std::fprintf(stderr, "hetcache: note: %s is float64; stored as float32\n", o.input.c_str());
  }
  KeyReader keys(o.keys, o.input, rows);
  VectorReader reader(o.input);
  if (reader.dim() != dim || reader.rows() != rows)
    throw Error(ErrorCode::InvalidArgument, o.input + ": changed while being read");
  const std::size_t bulk_rows = RocksDbOptions{}.bulk_ingest_rows;
  const bool bulk = !o.online && rows >= bulk_rows;
  auto cache = open_database(o.db, o.collection, dim, Access::ReadWrite, 256, bulk ? bulk_rows : 0,
                             stored_as);
  Ttl ttl;
  if (o.ttl_seconds > 0) ttl = std::chrono::seconds(o.ttl_seconds);
  const std::size_t batch = bulk
                                ? rows_per_batch(dim, o.batch > 0 ? o.batch : rows, kBulkBatchBytes)
                                : rows_per_batch(dim, o.batch > 0 ? o.batch : kOnlineBatchRows);
  Progress progress("ingest", rows, o.quiet);
  std::size_t done = 0;
  IngestCounts counts;
  std::vector<float> values;
  std::vector<std::string> batch_keys;
  const auto start = std::chrono::steady_clock::now();
  while (done < rows) {
    values.clear();
    const std::size_t n = reader.read(batch, values);
    keys.next(n, batch_keys);
    try {
      counts +=
          cache->ingest_batch(batch_keys, MatrixView(values.data(), n, dim), on_conflict, ttl);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::Conflict) throw;
      // The library's sentence without its code and its advice, which names its own option.
      std::string what = e.what();
      const std::string code = std::string(to_string(e.code())) + ": ";
      if (what.starts_with(code)) what.erase(0, code.size());
      what = what.substr(0, what.find(". OnConflict::"));
      throw Error(ErrorCode::Conflict,
                  "ingest stopped at rows " + std::to_string(done) + "-" +
                      std::to_string(done + n - 1) + " of " + o.input + ": " + what + "; the " +
                      std::to_string(done) +
                      " rows before were stored. --on-conflict overwrite replaces such vectors, "
                      "--on-conflict skip keeps the stored ones");
    }
    done += n;
    progress.update(done);
  }
  progress.finish(done);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "ingested %zu vectors (dim %zu, %s) into %s: %llu written, %llu unchanged, %llu "
      "overwritten, %llu skipped, %.2f s, %.0f vectors/s\n",
      done, dim, reader.dtype().c_str(), o.db.c_str(),
      static_cast<unsigned long long>(counts.written),
      static_cast<unsigned long long>(counts.unchanged),
      static_cast<unsigned long long>(counts.overwritten),
      static_cast<unsigned long long>(counts.skipped), s, s > 0 ? double(done) / s : 0.0);
  const std::uint64_t bulk_batches = cache->stats().bulk_ingests;
  if (bulk_batches > 0)
    std::printf("written as table files in %llu batch%s\n",
                static_cast<unsigned long long>(bulk_batches), bulk_batches == 1 ? "" : "es");
}

}  // namespace

void add_ingest(CLI::App& app) {
  auto* c = app.add_subcommand("ingest",
                               "Store vectors from a .npy (float16/32/64), .fvecs or .csv file "
                               "in a database; re-running leaves unchanged vectors alone");
  static IngestOptions o;
  c->add_option("--db", o.db, "database directory (created when missing)")->required();
  add_collection_option(c, o.collection);
  c->add_option("--input", o.input, "vectors: .npy (float16, float32 or float64), .fvecs or .csv")
      ->required();
  c->add_option("--keys", o.keys,
                "one key per line, distinct and non-empty (default: <file stem>:<row>)");
  add_count(c, "--ttl", o.ttl_seconds, 1, kMaxTtlSeconds,
            "seconds until the vectors expire, up to 100 years (default: never)");
  add_count(c, "--batch", o.batch, 1, std::size_t{1} << 24,
            "vectors per batch, each stored whole (default: inputs of 65536 rows or more in "
            "batches of up to 1 GiB written as table files, smaller ones in batches of 4096 rows "
            "-- at most 64 MiB -- through the write-ahead log)");
  c->add_option("--on-conflict", o.on_conflict,
                "a key already holding a different vector: error (default: stop before the "
                "batch, naming the first such key), overwrite, or skip (keep the stored one)");
  c->add_option("--dtype", o.dtype,
                "how the vectors are stored: f32 (default), f16, bf16 (2 bytes per element) or i8 "
                "(1 byte, and a scale per vector); rounded on the way in, read back as float32. "
                "Re-running with the same input and --dtype finds the vectors unchanged");
  c->add_flag("--online", o.online,
              "write every batch through the write-ahead log, never as table files (batches of "
              "4096 rows, at most 64 MiB, instead of up to 1 GiB)");
  c->add_flag("--quiet", o.quiet, "no progress output");
  c->callback([] { run_ingest(o); });
}

}  // namespace hetcache::cli
