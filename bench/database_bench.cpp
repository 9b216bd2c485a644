// Database benchmark: the embedded durable store against the disk it runs on and its peers, one
// run on the same random vectors (d = 768 by default, 1M for ingest; reads of 1000 random keys).
//   - the disk's sequential write and read bandwidth with direct I/O (no page cache);
//   - ingest: hetcache bulk ingest (ingest_batch above bulk_ingest_rows: table files), online
//     put_batch (4096 keys, async WAL), online ingest_batch (4096 keys, compared first: what
//     `hetcache ingest --online` does), LMDB (4096-key transactions; and sorted MDB_APPEND, its
//     bulk-load path), Redis (pipelined SETs, on loopback, no persistence);
//   - reads: get_batch of 1000 random keys, warm (every file read once first, so the page cache
//     holds it) and cold (the files evicted from the page cache, the store reopened), hetcache
//     through its public API (a 64 MiB memory store, so nearly every key reads through to
//     RocksDB), LMDB, Redis (MGET).
// Values are hetcache's value format in every store (header, XXH3 checksum, payload), so every
// reader decodes and verifies the same bytes.
//
//   hetcache_database_bench [--rows N] [--dim D] [--rounds R] [--dir DIR] [--out FILE.md]
//                           [--only TEXT]   (profiling: the ingests whose name holds TEXT, once)
//
// Ingest runs R rounds (default 3), each system once per round, interleaved, each into a fresh
// directory: the median is reported. The directories live under DIR (default $TMPDIR or /tmp):
// about 4 x rows x dim x 4 bytes of disk.
#include <hetcache/hetcache.hpp>

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_data.hpp"
#include "machine_limits.hpp"
#include "redis_peer.hpp"
#if defined(HETCACHE_HAVE_LMDB)
#include "lmdb_peer.hpp"
#endif

namespace hetcache::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

constexpr std::size_t kOnlineBatch = 4096;
constexpr std::size_t kReadBatch = 1000;
constexpr std::size_t kBulkBatchBytes = std::size_t{1} << 30;  // what `hetcache ingest` uses

struct Setup {
  std::size_t rows = 1000000, dim = 768, rounds = 3;
  std::string dir, out, only;
};

// Reads every file under dir once, so the page cache holds it (a warm store).
void warm_files(const std::string& dir) {
  std::vector<char> buffer(std::size_t{8} << 20);
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const int fd = ::open(e.path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    while (::read(fd, buffer.data(), buffer.size()) > 0) {
    }
    ::close(fd);
  }
}

// Drops the page cache's copy of every file under dir (clean pages; no root needed).
void evict(const std::string& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const int fd = ::open(e.path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

std::uintmax_t dir_bytes(const std::string& dir) {
  std::uintmax_t bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) bytes += e.file_size();
  return bytes;
}

CacheOptions rocks(const Setup& s, const std::string& path, std::size_t bulk_rows) {
  CacheOptions o;
  o.dim = s.dim;
  o.durable = RocksDbOptions{};
  o.durable->path = path;
  o.durable->bulk_ingest_rows = bulk_rows;
  return o;
}

struct Ingest {
  Ingest(std::string n, std::string how, std::function<void(const std::string&)> f)
      : name(std::move(n)), note(std::move(how)), run(std::move(f)) {}
  std::string name, note;
  std::function<void(const std::string& path)> run;  // ingests every row into path
  std::vector<double> seconds;
  std::uintmax_t disk_bytes = 0;
};

// One timed get_batch system: reads the batches, checks every key came back intact.
struct Reader {
  std::string name;
  std::function<std::size_t(const std::vector<std::string>&, MutableMatrixView)> get;
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

int run(int argc, char** argv) {
  Setup s;
  const char* tmp = std::getenv("TMPDIR");
  s.dir = tmp && *tmp ? tmp : "/tmp";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--rows") {
      s.rows = parse_size(argv[0], "--rows", v, kReadBatch, std::size_t{1} << 26), ++i;
    } else if (a == "--dim") {
      s.dim = parse_size(argv[0], "--dim", v, 1, 65536), ++i;
    } else if (a == "--rounds") {
      s.rounds = parse_size(argv[0], "--rounds", v, 1, 15), ++i;
    } else if (a == "--dir") {
      s.dir = v, ++i;
    } else if (a == "--out") {
      s.out = v, ++i;
    } else if (a == "--only") {
      s.only = v, ++i;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--rows N] [--dim D] [--rounds R] [--dir DIR] [--out FILE.md] "
                   "[--only TEXT]\n",
                   argv[0]);
      return 2;
    }
  }
  const std::string root = s.dir + "/hetcache-database-bench-" + std::to_string(::getpid());
  fs::create_directories(root);
  struct Cleanup {
    std::string root;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(root, ignored);
    }
  } cleanup{root};
  const std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
  const double vector_bytes = double(s.dim * sizeof(float));

  std::fprintf(stderr, "disk bandwidth (direct I/O, 2 GiB) under %s...\n", s.dir.c_str());
  const DiskBandwidth disk = measure_disk_bandwidth(root);
  std::fprintf(stderr, "data: %zu x %zu random floats...\n", s.rows, s.dim);
  const Matrix data = random_matrix(s.rows, s.dim, 42, threads);
  std::vector<std::string> keys(s.rows);
  for (std::size_t i = 0; i < s.rows; ++i) keys[i] = "emb:" + std::to_string(i);
  std::vector<std::size_t> in_order(s.rows), sorted(s.rows);
  std::iota(in_order.begin(), in_order.end(), std::size_t{0});
  const auto batch_view = [&](std::size_t first, std::size_t n) {
    return MatrixView(data.row(first), n, s.dim, data.stride());
  };
  const auto batch_keys = [&](std::size_t first, std::size_t n) {
    return std::span<const std::string>(keys).subspan(first, n);
  };

  RedisServer redis;
  std::vector<Ingest> ingests;
  const std::size_t bulk_batch = std::max<std::size_t>(1, kBulkBatchBytes / (s.dim * 4));
  ingests.push_back({"hetcache bulk ingest",
                     "ingest_batch of " + std::to_string(std::min(bulk_batch, s.rows)) +
                         " rows (1 GiB) as table files",
                     [&](const std::string& path) {
                       EmbeddingCache cache(rocks(s, path, RocksDbOptions{}.bulk_ingest_rows));
                       for (std::size_t f = 0; f < s.rows; f += bulk_batch) {
                         const std::size_t n = std::min(bulk_batch, s.rows - f);
                         cache.ingest_batch(batch_keys(f, n), batch_view(f, n));
                       }
                     }});
  ingests.push_back({"hetcache online put_batch", "4096 keys per write batch, async WAL",
                     [&](const std::string& path) {
                       EmbeddingCache cache(rocks(s, path, 0));
                       for (std::size_t f = 0; f < s.rows; f += kOnlineBatch) {
                         const std::size_t n = std::min(kOnlineBatch, s.rows - f);
                         cache.put_batch(batch_keys(f, n), batch_view(f, n));
                       }
                     }});
  ingests.push_back({"hetcache online ingest_batch",
                     "4096 keys, compared first (`hetcache ingest --online`)",
                     [&](const std::string& path) {
                       EmbeddingCache cache(rocks(s, path, 0));
                       for (std::size_t f = 0; f < s.rows; f += kOnlineBatch) {
                         const std::size_t n = std::min(kOnlineBatch, s.rows - f);
                         cache.ingest_batch(batch_keys(f, n), batch_view(f, n));
                       }
                     }});
#if defined(HETCACHE_HAVE_LMDB)
  const std::size_t lmdb_map = std::size_t(double(s.rows) * (vector_bytes + 128) * 2) + (1u << 30);
  ingests.push_back(
      {"LMDB", "4096 keys per transaction, then one sync", [&](const std::string& path) {
         fs::create_directories(path);
         LmdbPeer db(path, lmdb_map, s.dim);
         for (std::size_t f = 0; f < s.rows; f += kOnlineBatch)
           db.put(keys, data.view(), in_order, f, std::min(kOnlineBatch, s.rows - f), false);
         db.sync();
       }});
  ingests.push_back({"LMDB sorted append", "keys sorted (timed), one MDB_APPEND transaction",
                     [&](const std::string& path) {
                       fs::create_directories(path);
                       std::iota(sorted.begin(), sorted.end(), std::size_t{0});
                       std::sort(sorted.begin(), sorted.end(),
                                 [&](std::size_t a, std::size_t b) { return keys[a] < keys[b]; });
                       LmdbPeer db(path, lmdb_map, s.dim);
                       db.put(keys, data.view(), sorted, 0, s.rows, true);
                       db.sync();
                     }});
#endif
  ingests.push_back(
      {"Redis pipelined", "SET pipelines of 4096 keys, loopback, no persistence",
       [&](const std::string&) {
         redisReply* reply = static_cast<redisReply*>(redisCommand(redis.context(), "FLUSHALL"));
         if (reply) freeReplyObject(reply);
         std::vector<std::string> ks, vs;
         for (std::size_t f = 0; f < s.rows; f += kOnlineBatch) {
           const std::size_t n = std::min(kOnlineBatch, s.rows - f);
           ks.assign(keys.begin() + f, keys.begin() + f + n);
           vs.resize(n);
           for (std::size_t i = 0; i < n; ++i)
             cache::encode_value(ks[i], data.row(f + i), s.dim, cache::kNeverExpires, vs[i]);
           redis.set_batch(ks, vs);
         }
       }});

  if (!s.only.empty()) {  // a profiling aid: these ingests alone, no reads, no report
    for (auto& in : ingests) {
      if (in.name.find(s.only) == std::string::npos) continue;
      const auto start = Clock::now();
      in.run(root + "/only");
      std::printf("%s: %.0f vectors/s\n", in.name.c_str(), double(s.rows) / seconds_since(start));
    }
    return 0;
  }
  for (std::size_t round = 0; round < s.rounds; ++round) {
    for (auto& in : ingests) {
      const std::string path = root + "/" + std::to_string(&in - ingests.data());
      std::error_code ignored;
      fs::remove_all(path, ignored);
      std::fprintf(stderr, "round %zu: %s...\n", round + 1, in.name.c_str());
      const auto start = Clock::now();
      in.run(path);
      in.seconds.push_back(seconds_since(start));
      std::fprintf(stderr, "  %.2f s\n", in.seconds.back());
      if (fs::exists(path)) in.disk_bytes = dir_bytes(path);
    }
  }

  // Reads over what the last round left: the bulk-ingested database, LMDB's, Redis.
  std::mt19937_64 rng(7);
  const auto random_batch = [&] {
    std::vector<std::string> b(kReadBatch);
    for (auto& k : b) k = keys[rng() % s.rows];
    return b;
  };
  // Fresh keys for every round (and the warm-up): 20 batches a round, up to 16 rounds; each
  // system reads the same sequence.
  constexpr std::size_t kBatchesPerRound = 20;
  std::vector<std::vector<std::string>> batches(kBatchesPerRound * 16);
  for (auto& b : batches) b = random_batch();
  Matrix out(kReadBatch, s.dim);
  const std::string bulk_path = root + "/0";
  const auto expect_all = [&](const std::string& who, std::size_t hits) {
    if (hits != kReadBatch)
      throw std::runtime_error(who + " found " + std::to_string(hits) + " of " +
                               std::to_string(kReadBatch) + " keys");
  };
  const auto read_options = [&] {
    CacheOptions o = rocks(s, bulk_path, 0);
    o.max_bytes = std::size_t{64} << 20;
    return o;
  };
  std::vector<Reader> readers;
  auto hc = std::make_unique<EmbeddingCache>(read_options());
  readers.push_back({"hetcache get_batch", [&](const auto& b, MutableMatrixView o) {
                       const auto mask = hc->get_batch(b, o);
                       return std::size_t(std::count(mask.begin(), mask.end(), 1));
                     }});
#if defined(HETCACHE_HAVE_LMDB)
  const std::string lmdb_path = root + "/3";
  auto lmdb = std::make_unique<LmdbPeer>(lmdb_path, lmdb_map, s.dim);
  readers.push_back(
      {"LMDB", [&](const auto& b, MutableMatrixView o) { return lmdb->get_batch(b, o); }});
#endif
  readers.push_back(
      {"Redis MGET", [&](const auto& b, MutableMatrixView o) { return redis.mget_batch(b, o); }});
  std::fprintf(stderr, "warm reads...\n");
  warm_files(bulk_path);
#if defined(HETCACHE_HAVE_LMDB)
  warm_files(lmdb_path);
#endif
  std::vector<std::function<void()>> warm_runs;
  std::vector<std::size_t> next_batch(readers.size(), 0);
  for (std::size_t i = 0; i < readers.size(); ++i) {
    warm_runs.push_back([&, i] {
      for (std::size_t j = 0; j < kBatchesPerRound; ++j) {
        const auto& b = batches[next_batch[i]++ % batches.size()];
        expect_all(readers[i].name, readers[i].get(b, out.mutable_view()));
      }
    });
  }
  const std::vector<double> warm = interleaved_medians(5, warm_runs);
  const CacheStats warm_stats = hc->stats();
  // Is the cache's answer the data? One batch checked row by row.
  {
    const auto mask = hc->get_batch(batches[0], out.mutable_view());
    for (std::size_t i = 0; i < kReadBatch; ++i) {
      const std::size_t row = std::stoul(batches[0][i].substr(4));
      if (!mask[i] || std::memcmp(out.row(i), data.row(row), s.dim * 4) != 0)
        throw std::runtime_error("hetcache returned a wrong vector for " + batches[0][i]);
    }
  }
  std::fprintf(stderr, "cold reads...\n");
  std::vector<std::vector<double>> cold(readers.size());
  for (int rep = 0; rep < 5; ++rep) {
    const auto b = random_batch();
    hc.reset();
    evict(bulk_path);
    hc = std::make_unique<EmbeddingCache>(read_options());
    auto start = Clock::now();
    expect_all(readers[0].name, readers[0].get(b, out.mutable_view()));
    cold[0].push_back(seconds_since(start));
#if defined(HETCACHE_HAVE_LMDB)
    lmdb.reset();
    evict(lmdb_path);
    lmdb = std::make_unique<LmdbPeer>(lmdb_path, lmdb_map, s.dim);
    start = Clock::now();
    expect_all(readers[1].name, readers[1].get(b, out.mutable_view()));
    cold[1].push_back(seconds_since(start));
#endif
  }

  // --- the report ------------------------------------------------------------------------------
  utsname u{};
  ::uname(&u);
  std::ostringstream r;
  const double gb = 1e9;
  r << "# Database benchmark\n\n"
    << "- CPU: " << cpu_model() << ", " << threads << " threads; kernel " << u.release << "\n"
    << "- Data: " << s.rows << " random vectors x " << s.dim << " float32 ("
    << fmt("%.2f", double(s.rows) * vector_bytes / gb) << " GB), keys `emb:<row>`\n"
    << "- Disk under " << s.dir << ", direct I/O, 2 GiB sequential (best of 2): write "
    << fmt("%.2f", disk.write / gb) << " GB/s, read " << fmt("%.2f", disk.read / gb) << " GB/s\n"
#if defined(HETCACHE_HAVE_LMDB)
    << "- LMDB: " << LmdbPeer::version() << "\n"
#else
    << "- LMDB: missing (liblmdb-dev not found when this was built; scripts/deps.sh bench)\n"
#endif
    << "\n## Ingest (median of " << s.rounds << " interleaved rounds, each into a fresh store)\n\n"
    << "| system | how | vectors/s | vector GB/s | of disk write | on disk |\n"
    << "|---|---|---:|---:|---:|---:|\n";
  for (const auto& in : ingests) {
    const double sec = median(in.seconds);
    const double rate = double(s.rows) / sec;
    r << "| " << in.name << " | " << in.note << " | " << fmt("%.0f", rate) << " | "
      << fmt("%.2f", rate * vector_bytes / gb) << " | "
      << fmt("%.0f%%", 100 * rate * vector_bytes / disk.write) << " | "
      << (in.disk_bytes ? fmt("%.2f GB", double(in.disk_bytes) / gb) : std::string("memory"))
      << " |\n";
  }
  r << "\n## get_batch of " << kReadBatch << " random keys\n\n"
    << "Warm: every file of the store read once first (the page cache holds it), then the median "
       "over rounds of "
    << kBatchesPerRound
    << " batches each (fresh random keys every round), stores interleaved. Cold: the store's files "
       "evicted from the page cache "
       "and the store reopened before one batch; median of 5.\n\n"
    << "| system | warm vectors/s | warm us/batch | cold ms/batch |\n|---|---:|---:|---:|\n";
  for (std::size_t i = 0; i < readers.size(); ++i) {
    const double per_batch = warm[i] / double(kBatchesPerRound);
    r << "| " << readers[i].name << " | " << fmt("%.0f", double(kReadBatch) / per_batch) << " | "
      << fmt("%.0f", per_batch * 1e6) << " | "
      << (cold[i].empty() ? std::string("(in memory)") : fmt("%.1f", median(cold[i]) * 1e3))
      << " |\n";
  }
  r << "\nhetcache's reads went through the cache's public get_batch with a 64 MiB memory store: "
       "in the warm rounds "
    << warm_stats.memory_hits << " keys came from memory, " << warm_stats.durable_hits
    << " from RocksDB.\n";
  return print_report(r.str(), s.out);
}

}  // namespace
}  // namespace hetcache::bench

int main(int argc, char** argv) {
  return hetcache::bench::guarded_main("hetcache_database_bench", hetcache::bench::run, argc, argv);
}
