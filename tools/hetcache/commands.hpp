// The hetcache subcommands; each registers itself on the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

#include <hetcache/cache.hpp>

#include <memory>
#include <string>

namespace hetcache::cli {

void add_ingest(CLI::App& app);
void add_search(CLI::App& app);
void add_stats(CLI::App& app);
void add_repair(CLI::App& app);
void add_plan(CLI::App& app);
void add_calibrate(CLI::App& app);
void add_demo(CLI::App& app);
void add_bench(CLI::App& app);

// What --version prints: the version, the SIMD paths built and those this CPU runs, CUDA or not.
std::string version_text();

enum class Access { ReadWrite, ReadOnly };

// A collection of a database directory as an EmbeddingCache (RocksDB store, a memory store of
// memory_mib). dim = 0: the collection must exist (its dimension is read from it). ReadOnly opens
// without the lock and creates nothing (for search and stats, on a read-only directory too): as a
// Follower when another process is writing the database, so it reads what that writer has
// committed. bulk_ingest_rows: RocksDbOptions::bulk_ingest_rows (0: every write through the log).
// stored_as: CacheOptions::durable_storage, the type writes store (reads take every type).
std::unique_ptr<EmbeddingCache> open_database(
    const std::string& dir, const std::string& collection, std::size_t dim, Access access,
    std::size_t memory_mib = 256, std::size_t bulk_ingest_rows = RocksDbOptions{}.bulk_ingest_rows,
    StorageType stored_as = StorageType::F32);
// --collection, into `collection` (whose initial value is the default).
void add_collection_option(CLI::App* command, std::string& collection);

// Rows per batch when reading vectors of `dim` floats: at most `max_rows`, and at most max_bytes
// of them (default 64 MiB), so a very wide vector cannot make a batch of gigabytes.
std::size_t rows_per_batch(std::size_t dim, std::size_t max_rows,
                           std::size_t max_bytes = std::size_t{64} << 20);

}  // namespace hetcache::cli
