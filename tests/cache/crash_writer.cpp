// Helper for the crash test: ingests batches into a durable cache forever and prints the number of
// each batch once put_batch has returned (acknowledged). The test SIGKILLs it at a random moment.
//   hetcache_crash_writer DIR DIM FIRST_BATCH synced|async
#include <hetcache/hetcache.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cache/cache_test_util.hpp"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s DIR DIM FIRST_BATCH synced|async\n", argv[0]);
    return 2;
  }
  using namespace hetcache;
  CacheOptions options;
  options.dim = std::stoul(argv[2]);
  options.max_entries = 1000;
  options.durable = RocksDbOptions{};
  options.durable->path = argv[1];
  options.durable->durability =
      std::string(argv[4]) == "synced" ? Durability::SyncedWal : Durability::AsyncWal;
  options.durable->write_buffer_bytes =
      1 << 20;  // small memtables: flushes and compactions happen mid-run
  EmbeddingCache cache(options);
  for (unsigned long batch = std::stoul(argv[3]);; ++batch) {
    const auto keys = test::make_keys("b" + std::to_string(batch) + "-", 16);
    cache.put_batch(keys, test::matrix_for(keys, batch, options.dim).view());
    std::printf("%lu\n", batch);
    std::fflush(stdout);
  }
}
