// Helper for the crash tests: ingests batches into a durable cache forever and prints the number of
// each batch once it is written (acknowledged). The test SIGKILLs it at a random moment.
//   hetcache_crash_writer DIR DIM FIRST_BATCH synced|async|bulk
// synced and async: batch b is the 16 keys make_keys("b<b>-", 16), one put_batch. bulk: batch b is
// the kBulkBatch keys make_keys("b<b>-", kBulkBatch), one ingest_batch written as table files.
#include <hetcache/hetcache.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cache/cache_test_util.hpp"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s DIR DIM FIRST_BATCH synced|async|bulk\n", argv[0]);
    return 2;
  }
  using namespace hetcache;
  CacheOptions options;
  options.dim = std::stoul(argv[2]);
  options.max_entries = 1000;
  options.durable = RocksDbOptions{};
  options.durable->path = argv[1];
  const std::string mode = argv[4];
  options.durable->durability = mode == "synced" ? Durability::SyncedWal : Durability::AsyncWal;
  const bool bulk = mode == "bulk";
  if (bulk) options.durable->bulk_ingest_rows = 1;
  options.durable->write_buffer_bytes =
      1 << 20;  // small memtables: flushes and compactions happen mid-run
  EmbeddingCache cache(options);
  for (unsigned long batch = std::stoul(argv[3]);; ++batch) {
    const auto keys =
        test::make_keys("b" + std::to_string(batch) + "-", bulk ? test::kBulkBatch : 16);
    const Matrix values = test::matrix_for(keys, batch, options.dim);
    if (bulk) {
      cache.ingest_batch(keys, values.view());
    } else {
      cache.put_batch(keys, values.view());
    }
    std::printf("%lu\n", batch);
    std::fflush(stdout);
  }
}
