#pragma once
// EmbeddingCache: vectors of one fixed dimension, keyed by strings, in a bounded memory store with
// an optional durable store underneath (embedded RocksDB, or a Redis server shared by many
// machines), plus search over what is cached. Every operation is placed on a tier (the calling
// thread, fibers, the TBB arena, the GPU) by the cache's strategy (CacheOptions::scheduler) and
// runs on the cache's Resources; stats() and metrics() say what ran where.

#include <hetcache/compact.hpp>
#include <hetcache/detail/cache_counters.hpp>
#include <hetcache/future.hpp>
#include <hetcache/matrix.hpp>
#include <hetcache/placement.hpp>
#include <hetcache/resources.hpp>
#include <hetcache/similarity.hpp>
#include <hetcache/types.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hetcache {

// When a write reaches the disk.
//   AsyncWal : the write-ahead log is written (to the OS) before put returns, not fsynced. A crash
//              of the process loses nothing; a crash of the machine can lose the last writes.
//   SyncedWal: the log is fsynced before put returns. Nothing acknowledged is ever lost; each
//              put / put_batch pays one fsync.
enum class Durability { AsyncWal, SyncedWal };

// How a process opens a RocksDB database directory. One process at a time writes; any number read.
//   ReadWrite: takes the directory's lock, creates the directory and database when missing. A
//              writer in another process fails with StoreUnavailable ("is locked"); in this
//              process, writers of different collections share one RocksDB instance, and a second
//              writer of one collection is refused the same way.
//   ReadOnly : no lock, creates or writes nothing (the directory may be read-only): sees the
//              database as it was when opened. Use it when no process is writing.
//   Follower : no lock, creates or writes nothing in the directory: follows a writer in another
//              process (a RocksDB secondary instance, its own log files in a temporary directory,
//              removed on close) and sees every batch the writer committed before its last catch-up
//              (catch_up_interval, EmbeddingCache::catch_up). A catch-up that finds new writes
//              empties the follower's memory store, so it never serves a value the writer replaced.
// ReadOnly and Follower need an existing hetcache database; every write (put, remove, clear,
// compact) throws Error(Unsupported). database_has_writer() tells which of the two fits.
enum class OpenMode { ReadWrite, ReadOnly, Follower };

// The embedded durable store: a RocksDB database in a directory, no server needed.
struct RocksDbOptions {
  std::string path;  // created, with its parents, when missing
  // The collection this cache reads and writes (default "default"): a database holds any number,
  // each with its own dimension, keys and row ids -- one per embedding model, say. 1 to 64
  // letters, digits, '_', '.' or '-'. A writer creates it when missing; ReadOnly and Follower
  // opens of a missing one fail naming the collections the database holds.
  std::string collection = "default";
  Durability durability = Durability::AsyncWal;
  std::size_t block_cache_bytes = std::size_t{256} << 20;  // RocksDB's read cache
  std::size_t write_buffer_bytes = std::size_t{64} << 20;  // memtable size before a flush
  int background_jobs = 2;                                 // flush + compaction threads
  // Float embeddings barely compress, so compression is off by default.
  bool compress = false;
  // Reads map the table files (default true) and decode each value straight from the mapping,
  // instead of copying every 4 KiB block through a read call into RocksDB's block cache: warm
  // get_batch of random keys runs ~1.5x faster. false: pread, as RocksDB does by default.
  bool mmap_reads = true;
  // Bulk ingest: an EmbeddingCache::ingest_batch that writes at least this many vectors (default
  // 65536) builds sorted table files -- encoded in parallel on the Cpu tier -- and adds them to the
  // database in one step (RocksDB IngestExternalFiles, vectors and row ids together), bypassing
  // the write-ahead log and the memtable: whole files or nothing, synced to disk whatever the
  // durability. 0: never (every write goes through the write-ahead log). put_batch always does.
  std::size_t bulk_ingest_rows = 65536;
  // How this process opens the directory (default ReadWrite); see OpenMode.
  OpenMode mode = OpenMode::ReadWrite;
  // Follower only: a read catches up with the writer first when the last catch-up is older than
  // this (default 500 ms), so a follower sees a batch the writer committed at most this long
  // before the read. 0: catch up before every read; milliseconds::max(): only when
  // EmbeddingCache::catch_up() is called.
  std::chrono::milliseconds catch_up_interval{500};
};

// The shared durable store: a Redis server (standalone, a Redis Cluster with `cluster`, or a
// cluster behind a proxy that accepts single-slot multi-key commands). Values use the same binary
// format as the RocksDB store.
struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;  // empty: no AUTH
  int db = 0;            // SELECTed after connecting
  // Prepended to every key. Must not contain '{' or '}' (they would change the hash slot).
  std::string key_prefix = "hetcache:";
  // 0: keys are prefix + key. N > 0: keys are prefix + "{t}" + key with t = hash(key) mod N in
  // hex, so a Redis Cluster spreads them over N hash slots; every MGET / SET pipeline then holds
  // keys of one tag only (one slot), as Cluster requires of multi-key commands.
  unsigned cluster_hash_tags = 0;
  // host:port is a node of a Redis Cluster: the slot map is read from it (CLUSTER SLOTS), every
  // pipeline goes to the master that serves its slot, and MOVED / ASK redirections (resharding,
  // failover) are followed. Needs cluster_hash_tags > 0 and db 0. Default false (a standalone
  // server, or a cluster proxy that routes single-slot commands itself).
  bool cluster = false;
  std::chrono::milliseconds connect_timeout{1000};
  // A batch whose replies have not all arrived by then fails (and the connection is reset).
  std::chrono::milliseconds command_timeout{2000};
  // Keys per MGET and per pipelined group of SETs (1 to 2^20; a reply array longer than 2^20
  // elements is refused as a protocol error). Default 256.
  std::size_t chunk_keys = 256;
  // Connections to a standalone server, each with its own event-loop thread; a batch goes to the
  // one with the fewest requests outstanding. 1 to 64, default 1: one pipelined connection keeps
  // a single-threaded redis-server busy, even across a network; more spread the client-side work
  // (reply parsing) over threads. A Redis Cluster keeps one per master whatever this says.
  std::size_t connections = 1;
  // Requests (batches) a connection has sent and not yet had answered, at most; later ones wait
  // unsent, in order, and one that waits so past command_timeout (counted from the call) fails
  // with StoreUnavailable (once sent, it has command_timeout for its replies). 0 (the default):
  // no limit, every request is sent at once.
  std::size_t max_in_flight = 0;
  // When Redis is down or times out: false -> the call throws Error(StoreUnavailable);
  // true -> the cache serves (and writes) its memory store only, counts the failure, and health()
  // reports the durable store unreachable. Either way it reconnects when Redis answers again.
  bool degrade_to_memory = false;
};

struct CacheOptions {
  std::size_t dim = 0;  // required: every vector has exactly this many floats
  // Memory store bounds; both hold at all times. Each entry is charged its row (dim rounded up to
  // 16 floats), its key and ~100 bytes of index. max_entries = 0 means "bounded by bytes only".
  std::size_t max_bytes = std::size_t{1} << 30;
  std::size_t max_entries = 0;
  // How the memory store keeps vectors (compact.hpp). F32 (the default): as given. F16 / Bf16:
  // 2 bytes per element, I8: 1 (plus a scale), each row with 40 bytes of norms and exact search's
  // bounds (I8: 48), so the same max_bytes holds ~1.9x (F16 / Bf16) or ~3.4x (I8) the entries at
  // d = 768. A get that the memory store answers returns the row as stored, decoded (rounded to
  // the type; a durable-store read returns the f32 value). Not with search_on_gpu.
  StorageType memory_storage = StorageType::F32;
  // How search() ranks a compact memory store. Exact (the default): the f32 search's keys and
  // scores -- the rows the compact scores cannot rule out are re-scored from the durable store's
  // f32 values, so it needs a durable store (a key the durable store cannot give is scored from
  // its stored row). Fast: the compact scores. Ignored for F32.
  ScoreMode search_mode = ScoreMode::Exact;
  // How the durable store (RocksDB or Redis) writes values: F32 (the default) as given, or F16 /
  // Bf16 / I8 (compact.hpp) -- converted on write, so a value takes 2 (or 1) bytes per element on
  // disk and on the wire. Values of every type are read, whatever this says. Every later read of
  // a put returns it rounded to this type (the memory store keeps the rounded row too); what
  // get_or_compute's embed returned is handed back as computed. Needs a durable store; with a
  // compact memory_storage it needs search_mode Fast (exact re-scores from f32 values).
  StorageType durable_storage = StorageType::F32;
  // NaN / Inf values are rejected by put unless this is set.
  bool allow_non_finite = false;
  // The durable store: RocksDB (durable) or Redis (redis), at most one. Neither: memory only.
  std::optional<RocksDbOptions> durable;
  std::optional<RedisOptions> redis;
  // The threads and the GPU every operation runs on; empty (the default) = scheduler.resources
  // when set, else Resources::shared(). Both set and different: Error(InvalidArgument).
  std::shared_ptr<Resources> resources{};
  // How operations are placed: the strategy (default Hybrid), its thresholds, the chunk size of
  // batches on fibers or the TBB arena (optimal_batch_size, default 64), Adaptive's calibration,
  // SIMD on or off and the GPU precision of search() (see placement.hpp).
  SchedulerConfig scheduler;
  // Prefetching (needs a durable store): gets are counted in a frequency sketch (count-min, a few
  // KiB), and keys asked for often that the memory store has lost are loaded ahead from the durable
  // store by background fibers into a prefetch set of up to prefetch_cache_size keys, kept by
  // frequency rather than recency. The set's rows (prefetch_cache_size x dim floats) come on top
  // of max_bytes. Off by default: it spends memory and background reads.
  bool enable_prefetching = false;
  std::size_t prefetch_cache_size = 1000;
  // search() on the GPU: the memory store's rows are mirrored in device memory (stored in
  // scheduler.gpu_precision, so about entries x dim x 4 or 2 bytes), and a search the strategy
  // places on the GPU re-uploads only the slabs (up to 4096 rows) that writes changed since the
  // last one. Writers wait while a search runs, as they do for a CPU search of their shard.
  // Without a GPU (the Resources' gpu.enable false, no device, or a build without CUDA), or when
  // the device runs out of memory, search runs on the CPU; stats() tells which happened. Default
  // false: without the mirror, search() is never placed on the GPU.
  bool search_on_gpu = false;
  // health() reports a low hit rate below this, once 1000 lookups have been made.
  double min_healthy_hit_rate = 0.5;
  // Where warnings go (corrupt values, durable-store failures); empty = stderr.
  std::function<void(std::string_view)> log;
};

// A time to live: the entry expires this long after the put. Zero or negative is an error; a huge
// value (up to milliseconds::max()) means "never".
using Ttl = std::optional<std::chrono::milliseconds>;

struct CacheStats {
  // Gauges, read when stats() is called.
  std::uint64_t entries = 0;           // live + not yet cleaned entries in the memory store
  std::uint64_t bytes = 0;             // bytes charged against max_bytes
  std::uint64_t capacity_entries = 0;  // the memory store's entry bound (after sharding)
  std::uint64_t capacity_bytes = 0;
  std::uint64_t prefetch_entries = 0, prefetch_capacity = 0;  // keys resident in the prefetch set
  std::uint64_t gpu_slab_uploads = 0;  // slabs (re-)uploaded to the device mirror
  // Counters since the cache was made: hits, memory_hits, durable_hits, misses, expired,
  // expired_removed, evictions, corrupt_reads, durable_errors, degraded_calls, prefetch_hits,
  // prefetch_misses, prefetch_loads, gpu_searches, bulk_ingests and a *_calls count per public
  // operation; each is described in detail/cache_counters.hpp.
#define HETCACHE_CACHE_STATS_FIELD(name) std::uint64_t name = 0;
  HETCACHE_CACHE_COUNTERS(HETCACHE_CACHE_STATS_FIELD)
#undef HETCACHE_CACHE_STATS_FIELD
};

enum class HealthStatus { Healthy, Degraded, Unhealthy };

struct CacheHealth {
  HealthStatus status = HealthStatus::Healthy;
  std::vector<std::string> reasons;  // empty when healthy
};

struct KeyHit {
  std::string key;
  float score = 0;
  // The vector's row id in its RocksDB database: given at the key's first write, dense from 0 in
  // the order keys first arrived, kept for good (a removed key that comes back gets it again), so
  // an index built outside on ids stays valid. -1 where there is none (a memory-only cache, Redis).
  std::int64_t id = -1;
};

// The order of EmbeddingCache::search's hits: the better score first (larger; smaller for L2's
// distances), NaN after every number, equal scores by key. A strict weak ordering, so hit lists
// from several searches (batches of a database, shards) merge with std::sort.
bool ranks_before(const KeyHit& a, const KeyHit& b, Metric metric) noexcept;

// What EmbeddingCache::ingest_batch does with a key that already holds a different vector.
//   Error    : refuses the whole batch, writing nothing of it: Error(Conflict) names how many keys
//              differ and the first of them.
//   Overwrite: the new vector replaces the stored one.
//   Skip     : the stored vector stays.
enum class OnConflict { Error, Overwrite, Skip };

// What ingest_batch did with each key (every key is counted once).
struct IngestCounts {
  std::uint64_t written = 0;      // absent (or expired) before, stored now
  std::uint64_t unchanged = 0;    // already held exactly this vector (bit for bit): not rewritten
  std::uint64_t overwritten = 0;  // held a different vector, replaced (OnConflict::Overwrite)
  std::uint64_t skipped = 0;      // held a different vector, kept (OnConflict::Skip)
  IngestCounts& operator+=(const IngestCounts& o) noexcept {
    written += o.written;
    unchanged += o.unchanged;
    overwritten += o.overwritten;
    skipped += o.skipped;
    return *this;
  }
};

// Scores of one query against keys: found[i] == 0 marks a key that is not cached (its score is
// NaN).
struct KeyScores {
  std::vector<float> scores;
  std::vector<std::uint8_t> found;
};

// What EmbeddingCache::scan went over: live vectors visited, expired and corrupt values skipped.
struct ScanCounts {
  std::uint64_t visited = 0, expired = 0, corrupt = 0;
};
// Receives a batch of keys, their row ids (KeyHit::id) and their rows (valid only during the
// call).
using ScanFn = std::function<void(std::span<const std::string> keys,
                                  std::span<const std::int64_t> ids, MatrixView rows)>;

// Computes embeddings for keys the cache lacks: must return a Matrix with one row per key, in
// order, of the cache's dimension. An exception thrown here reaches every caller waiting on these
// keys.
using EmbedFn = std::function<Matrix(std::span<const std::string> missing_keys)>;

// Thread-safe. Every call validates all of its input before changing anything, so a call that
// throws hetcache::Error has stored nothing. Reads never return an expired or corrupt vector.
//
// Placement: get, put, get_batch, put_batch, get_or_compute, search, similarity and the async
// forms are placed by the cache's scheduler (CacheOptions::scheduler.strategy) on a tier:
//   Sequential : the calling thread.
//   Fiber      : chunks of optimal_batch_size keys as concurrent fibers (misses of every chunk
//                wait on the durable store at once); a synchronous read of RocksDB (whose reads
//                block a thread) instead runs its chunks on the calling thread and as many I/O
//                threads as keep the cores busy (more only while its reads are seen waiting off
//                the CPU), no fiber between them. Compute is never placed here.
//   Cpu        : the Resources' TBB arena -- reads in chunks of optimal_batch_size keys, a put
//                batch as one write whose memory copies run in parallel chunks; search and
//                similarity run the SIMD kernels there.
//   Gpu        : search over the device mirror (search_on_gpu).
// A call that names a tier runs there instead (the Scheduler's own cache calls do that). What
// ran where is in metrics().
class EmbeddingCache {
 public:
  // Throws Error: dim == 0, bounds too small for one entry, a bad SchedulerConfig, a durable
  // directory that cannot be opened, is locked by another process, or was written with another
  // dimension; Corruption when its files are damaged.
  explicit EmbeddingCache(CacheOptions options);
  ~EmbeddingCache();
  EmbeddingCache(const EmbeddingCache&) = delete;
  EmbeddingCache& operator=(const EmbeddingCache&) = delete;

  std::size_t dim() const noexcept;
  bool has_durable_store() const noexcept;
  const std::shared_ptr<Resources>& resources() const noexcept;

  // Copies the vector into out (out.size() == dim); false when absent or expired.
  bool get(std::string_view key, std::span<float> out);
  std::optional<std::vector<float>> get(std::string_view key);
  void put(std::string_view key, std::span<const float> value, Ttl ttl = std::nullopt);
  bool contains(std::string_view key);
  // True when the key was present (in either store).
  bool remove(std::string_view key);
  // Empties both stores.
  void clear();
  // Drops expired entries from the memory store now (the durable store drops them in compaction);
  // returns how many were dropped.
  std::size_t cleanup_expired();
  // Compacts the durable store now, dropping its expired values (RocksDB also does this on its
  // own as data is written); nothing to do without a durable store.
  void compact();
  // A Follower (RocksDbOptions::mode) applies what its writer committed since the last catch-up
  // and returns true when there was anything (the memory store is then emptied); false at once for
  // every other cache. Throws Error(StoreUnavailable) when the writer's files cannot be read.
  bool catch_up();

  // Row i of out receives keys[i]; the mask has 1 for a hit. Rows of misses are left untouched.
  // `tier` (Sequential, Fiber or Cpu) overrides the placement.
  std::vector<std::uint8_t> get_batch(std::span<const std::string> keys, MutableMatrixView out,
                                      std::optional<Tier> tier = std::nullopt);
  // Sequential and Cpu: one write batch for the whole call (Cpu copies into the memory store in
  // parallel chunks); Fiber: one write batch per optimal_batch_size keys (atomic per chunk, not
  // across the call). `tier` overrides the placement.
  void put_batch(std::span<const std::string> keys, MatrixView values, Ttl ttl = std::nullopt,
                 std::optional<Tier> tier = std::nullopt);
  // put_batch for data that may be loaded again (an indexing job resumed or re-run with new
  // model outputs): each key's stored vector is compared with the new one first. Absent or
  // expired -> written; the same bits -> left alone, its TTL too (a re-run writes nothing);
  // different -> on_conflict decides. Keys must be distinct (Error(InvalidArgument) names the
  // repeated one). Compares and writes with the keys' stripes held, so no other write of these
  // keys through this cache lands in between. With a durable store, what is written goes there
  // alone -- one write batch on the calling thread, or from RocksDbOptions::bulk_ingest_rows
  // vectors on, table files built on the Cpu tier -- and the memory store only drops the keys it
  // held (a later get reloads them), so a large ingest does not evict the hot entries; a
  // memory-only cache writes its memory store. Batches over 4096 keys are compared on the Cpu
  // tier. A value in the durable store that fails its checks is replaced (and logged). An
  // unreachable Redis throws StoreUnavailable even with degrade_to_memory: an ingest must reach
  // the store.
  IngestCounts ingest_batch(std::span<const std::string> keys, MatrixView values,
                            OnConflict on_conflict = OnConflict::Error, Ttl ttl = std::nullopt);
  // Throws what put_batch would throw for these keys and values, and changes nothing (a caller
  // that splits one batch across threads checks the whole batch first).
  void check_put_batch(std::span<const std::string> keys, MatrixView values) const;
  // --- asynchronous forms ----------------------------------------------------------------------
  // They validate their input at once (and throw as the sync forms do), then run where they are
  // placed: on Fiber, memory hits are served at once and misses go to the durable store as
  // concurrent fibers; on Cpu, as a task in the TBB arena; on Sequential, before the call returns
  // (the future is ready). keys, out and values are not copied: they must stay valid until the
  // future is ready.
  Future<std::vector<std::uint8_t>> get_batch_async(std::span<const std::string> keys,
                                                    MutableMatrixView out);
  Future<void> put_batch_async(std::span<const std::string> keys, MatrixView values,
                               Ttl ttl = std::nullopt);
  // On Fiber, both stores are read as get_batch_async reads them (a fiber waiting on a durable
  // read holds no thread); only keys missing from both go on to the I/O pool, where embed (which
  // may block) and the writes run.
  Future<std::size_t> get_or_compute_async(std::span<const std::string> keys, MutableMatrixView out,
                                           const EmbedFn& embed, Ttl ttl = std::nullopt);

  // Loads keys from the durable store into the prefetch set ahead of their gets, as fibers; the
  // future gives how many were loaded (keys missing or expired in the durable store, or written
  // while loading, are not). Warmed keys displace the coldest residents; at most
  // prefetch_cache_size stay. Throws Error(InvalidArgument) unless enable_prefetching is set.
  Future<std::size_t> warm(std::span<const std::string> keys);

  // Fills out for every key, calling embed once with the distinct missing keys (not at all when
  // everything is cached). Concurrent callers missing the same key wait for one computation.
  // Returns how many keys this call computed. Placed as a GetBatch (Cpu: run inside the arena).
  std::size_t get_or_compute(std::span<const std::string> keys, MutableMatrixView out,
                             const EmbedFn& embed, Ttl ttl = std::nullopt);

  // A stable key for (model, text): XXH3-128 over length-prefixed model id, dim, dtype and text,
  // as 32 hex digits.
  std::string content_key(std::string_view model, std::string_view text) const;

  // Top-k over every live vector in the memory store, read in place. Ranking as in Hits, with
  // equal scores ordered by key. `tier` (Sequential, Cpu, or Gpu with search_on_gpu) overrides
  // the placement.
  std::vector<std::vector<KeyHit>> search(MatrixView queries, std::size_t k,
                                          Metric metric = Metric::Cosine,
                                          std::optional<Tier> tier = std::nullopt);
  // One score per key (read through from the durable store when needed).
  KeyScores similarity(std::span<const float> query, std::span<const std::string> keys,
                       Metric metric = Metric::Cosine);

  // Every live vector of the durable store (which holds every put), in key order, batch_rows at a
  // time -- for a search over a whole database, an export or a check: every value's checksum is
  // verified, corrupt and expired ones are skipped and counted. Reads a snapshot; concurrent
  // writes may or may not be seen. Error(Unsupported) without a durable store or on Redis (which
  // cannot list keys cheaply); what `visit` throws stops the scan and reaches the caller.
  ScanCounts scan(const ScanFn& visit, std::size_t batch_rows = 4096);
  // About how many values the durable store holds, read from its metadata (for progress and
  // sizing, not for logic): RocksDB's estimate, exact for a database only added to, high after
  // overwrites or removals until compaction. nullopt without a durable store or on Redis.
  std::optional<std::uint64_t> estimated_durable_count();

  CacheStats stats() const;
  // Where the cache's operations ran: per tier, operations, latencies and decisions (the
  // scheduler's metrics; see placement.hpp).
  PerformanceMetrics metrics() const;
  CacheHealth health();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The dimension a collection of the hetcache RocksDB database at rocksdb_path was created with
// (opened read-only: it answers while another process has the database open, and creates no
// file); nullopt when the path holds no hetcache database or no such collection. Throws
// Error(Corruption) when the database's files are damaged (the message names the file and
// offset), StoreUnavailable when unreadable, InvalidArgument for a malformed collection name.
std::optional<std::size_t> stored_dimension(const std::string& rocksdb_path,
                                            std::string_view collection = "default");

// The collections of the hetcache database at rocksdb_path, by name, with their dimensions (read
// as stored_dimension reads, beside a writer too); empty when the path holds no database.
struct CollectionInfo {
  std::string name;
  std::size_t dim = 0;
};
std::vector<CollectionInfo> database_collections(const std::string& rocksdb_path);

// True when a process (this one included) has the RocksDB database at rocksdb_path open
// read-write (it holds the directory's lock): readers should then open it as a Follower. False
// when nobody does, or when the path holds no database.
bool database_has_writer(const std::string& rocksdb_path);

// The same key as EmbeddingCache::content_key, for a cache of dimension dim storing f32.
std::string content_key(std::string_view model, std::size_t dim, std::string_view text);

std::string_view to_string(HealthStatus status) noexcept;

}  // namespace hetcache
