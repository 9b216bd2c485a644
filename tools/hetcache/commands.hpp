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
void add_plan(CLI::App& app);
void add_calibrate(CLI::App& app);
void add_demo(CLI::App& app);
void add_bench(CLI::App& app);

// A database directory as an EmbeddingCache (RocksDB tier, a memory tier of memory_mib).
// dim = 0: the database must exist (its dimension is read from it).
std::unique_ptr<EmbeddingCache> open_database(const std::string& dir, std::size_t dim,
                                              std::size_t memory_mib = 256);

}  // namespace hetcache::cli
