// Private: the state behind EmbeddingCache, built with its read and write paths in
// cache_impl.cpp, shared by the public calls (embedding_cache.cpp, embedding_cache_async.cpp),
// the tiers they are placed on (embedding_cache_tiers.cpp) and prefetching
// (embedding_cache_prefetch.cpp).
#pragma once

#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>
#include <hetcache/scheduler.hpp>

#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_set>

#include "cache/arena_chunks.hpp"
#include "cache/cache_counters.hpp"
#include "cache/durable/durable_store.hpp"
#include "cache/durable/redis_store.hpp"
#include "cache/durable/rocksdb_store.hpp"
#include "cache/expiry.hpp"
#include "cache/fiber_chunks.hpp"
#include "cache/key_checks.hpp"
#include "cache/memory/device_slabs.hpp"
#include "cache/memory/memory_store.hpp"
#include "cache/placed_operation.hpp"
#include "cache/prefetch/prefetcher.hpp"
#include "cache/read_waits.hpp"
#include "cache/single_flight.hpp"
#include "cache/stripes.hpp"
#include "runtime/resources_core.hpp"
#include "scheduler/rules.hpp"
#include "scheduler/work_shapes.hpp"

namespace hetcache {
using cache::add;
using cache::expiry_for;
using cache::for_each_chunk;
using cache::now_unix_ms;
using cache::quoted_prefix;

struct EmbeddingCache::Impl {
  CacheOptions options;
  std::shared_ptr<Resources> resources;
  // Places every operation (options.scheduler.strategy) and records what ran; its engine runs
  // search and similarity.
  Scheduler scheduler;
  cache::MemoryStore memory;
  std::unique_ptr<cache::DurableStore> durable;
  bool degrade = false;   // serve memory-only when the durable store is unreachable
  bool follower = false;  // the durable store follows a writer in another process
  // How much the durable store's reads wait off the CPU: sizes the Fiber tier's I/O helpers.
  cache::ReadWaits read_waits;
  cache::SingleFlight flights;
  // Frequency tracking and the prefetch set; null unless enable_prefetching.
  std::unique_ptr<cache::Prefetcher> prefetch;
  // The memory store mirrored on the GPU when search_on_gpu is set and the engine has a device.
  std::unique_ptr<cache::DeviceSlabs> device_slabs;
  std::atomic<bool> prefetch_failure_logged{false};
  cache::Counters counters;
  std::atomic<bool> degraded_logged{false};  // the first call served memory-only was logged
  cache::Stripes stripes;                    // keep the two stores in agreement (stripes.hpp)
  static constexpr std::size_t kMaxLoggedCorruptKeys = 10000;
  std::mutex corrupt_log_mutex;
  std::unordered_set<std::string> corrupt_logged;

  // Checks the options and opens the stores (cache_impl.cpp).
  explicit Impl(CacheOptions opts);
  // The prefetch loader runs on the resources and uses this object: no new one starts, the running
  // one is waited for.
  ~Impl() {
    if (prefetch) prefetch->stop();
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  const SimilarityEngine& engine() const noexcept { return scheduler.engine(); }
  std::size_t chunk_keys() const noexcept { return options.scheduler.optimal_batch_size; }

  // The Work a cache call of n keys is placed as.
  Work work(OpKind one, OpKind batch, std::size_t n) const {
    Work w = scheduler::cache_work(one, batch, n, options.dim, durable != nullptr);
    if (durable != nullptr && one == OpKind::Get) w.round_trip_us = durable->round_trip_us();
    return w;
  }
  cache::PlacedOperation place(const Work& w, std::optional<Tier> named) {
    return cache::PlacedOperation(scheduler, w, named);
  }
  // Records a placed batch (null: not placed here) as it ran on its tier.
  void finish_batch(cache::PlacedOperation* op) const noexcept {
    if (op != nullptr)
      op->finish(scheduler::batch_execution(op->tier(), op->work().items, chunk_keys(),
                                            engine().cpu_threads()));
  }
  // Where the strategy puts gets and puts of fewer than kSequentialBelow keys, decided once: every
  // strategy places them by its rule alone (Hybrid and Adaptive: the calling thread). There they
  // are counted (untimed_operations) but not timed -- the clock and the scheduler's bookkeeping
  // would cost a third of a memory hit.
  Tier small_get_tier = Tier::Sequential, small_put_tier = Tier::Sequential;
  bool untimed(Tier small_tier, std::size_t keys) {
    if (small_tier != Tier::Sequential || keys >= kSequentialBelow) return false;
    cache::CounterStripe& mine = counters.local();
    mine.untimed_operations.fetch_add(1, std::memory_order_relaxed);
    mine.untimed_items.fetch_add(keys, std::memory_order_relaxed);
    return true;
  }

  void log(const std::string& message) {
    if (options.log) {
      options.log(message);
    } else {
      std::cerr << "hetcache: " << message << '\n';
    }
  }

  // --- validation (before anything changes) ---------------------------------------------------
  void check_key(std::string_view key, std::size_t index) const { cache::check_key(key, index); }
  void check_storable(std::string_view key, std::size_t index) const {
    check_key(key, index);
    if (memory.charge(key.size()) > memory.max_charge()) {
      throw Error(ErrorCode::InvalidArgument,
                  "key #" + std::to_string(index) + " needs " +
                      std::to_string(memory.charge(key.size())) +
                      " bytes of memory store, more than one shard holds (" +
                      std::to_string(memory.max_charge()) + "); raise max_bytes");
    }
  }
  // Throws InvalidArgument naming the key and index of a NaN or infinity (unless allowed).
  void check_values(const float* row, std::size_t index, std::string_view key) const;
  // Throws unless a matrix has the cache's dimension and one row per key.
  void check_matrix(const char* what, std::size_t rows, std::size_t dim,
                    std::size_t want_rows) const;

  void note_corrupt(std::string_view key, std::string_view reason) {
    counters.local().corrupt_reads.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(corrupt_log_mutex);
    if (corrupt_logged.size() >= kMaxLoggedCorruptKeys) return;
    if (corrupt_logged.emplace(key).second) {
      log("corrupt value for key " + quoted_prefix(key) + " in " + durable->name() + " (" +
          std::string(reason) + "); treated as a miss" +
          (corrupt_logged.size() == kMaxLoggedCorruptKeys ? "; further corrupt keys not logged"
                                                          : ""));
    }
  }

  template <typename F>
  auto durable_call(F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const Error&) {
      counters.local().durable_errors.fetch_add(1, std::memory_order_relaxed);
      throw;
    }
  }
  // Runs a durable-tier call; when it fails with StoreUnavailable and the cache degrades to
  // memory, counts and logs that and returns false instead of throwing.
  template <typename F>
  bool durable_call_or_degrade(F&& f) {
    try {
      durable_call(std::forward<F>(f));
      return true;
    } catch (const Error& e) {
      if (!degrade || e.code() != ErrorCode::StoreUnavailable) {
        throw;
      }
      counters.local().degraded_calls.fetch_add(1, std::memory_order_relaxed);
      if (!degraded_logged.exchange(true, std::memory_order_relaxed)) {
        log(std::string(e.what()) + "; serving the memory store only until it answers again");
      }
      return false;
    }
  }

  // --- the read path ----------------------------------------------------------------------------
  // A follower catches up with its writer (due_only: when its interval has passed); true when new
  // writes were applied (embedding_cache_follow.cpp).
  bool catch_up(bool due_only);
  void follow_now();
  // Each hit's row id, from the durable store (which keeps the ids, when it keeps any).
  void fill_row_ids(std::vector<std::vector<KeyHit>>& hits);
  // Called first by every read of the public API; one test of a flag unless following. A failed
  // catch-up is logged and the reads see what the last one applied; the next read tries again.
  void follow() {
    if (follower) follow_now();
  }
  struct ReadCounts {
    // memory_hits counts every key served from memory, prefetch_hits those of them served by the
    // prefetch set.
    std::uint64_t memory_hits = 0, durable_hits = 0, expired = 0, prefetch_hits = 0;
  };
  // Adds a read to the counters; `resolved` is how many of its lookups ended (hit, expired or
  // missing) -- keys handed on to the durable store are counted by that read instead.
  void count(const ReadCounts& c, std::size_t resolved) {
    cache::CounterStripe& mine = counters.local();
    add(mine.memory_hits, c.memory_hits);
    add(mine.durable_hits, c.durable_hits);
    add(mine.hits, c.memory_hits + c.durable_hits);
    add(mine.misses, resolved - c.memory_hits - c.durable_hits);
    add(mine.expired, c.expired);
    if (prefetch) {
      add(mine.prefetch_hits, c.prefetch_hits);
      add(mine.prefetch_misses, resolved - c.prefetch_hits);
    }
  }

  // Copies memory hits (memory store, then prefetch set) into out and sets their mask; returns the
  // rows memory lacks (expired entries are final misses, not among them). track: the read counts
  // toward the keys' access frequencies (false for a second look at the same keys).
  std::vector<std::size_t> read_memory_tier(std::span<const std::string_view> keys,
                                            MutableMatrixView out, std::uint8_t* mask,
                                            std::int64_t now, ReadCounts& c, bool track = true);
  // Sorts a memory-resident store's lookups: a hit sets its mask and is counted (as a prefetch hit
  // too when from_prefetch), an expired entry is counted (a final miss), and the rows that missed
  // are returned. rows[j] is the row of found[j]; empty rows: found[j] is row j.
  static std::vector<std::size_t> sort_lookups(std::span<const cache::Lookup> found,
                                               std::span<const std::size_t> rows,
                                               std::uint8_t* mask, ReadCounts& c,
                                               bool from_prefetch);

  // --- prefetching (embedding_cache_prefetch.cpp) -----------------------------------------------
  std::vector<std::size_t> read_prefetch_set(std::span<const std::string_view> keys,
                                             std::span<const std::size_t> absent,
                                             MutableMatrixView out, std::uint8_t* mask,
                                             std::int64_t now, ReadCounts& c);
  // Counts a read of keys toward their frequencies; queues hot absent ones for the loader.
  void track_reads(std::span<const std::string_view> keys, std::span<const std::size_t> absent);
  // The loader: a fiber that drains the prefetch queue.
  void drain_prefetch_queue();
  // Reads keys from the durable store (from a fiber) into the prefetch set -- unless a writer held
  // or took a key's stripe meanwhile; force: displace residents regardless of frequency (warm).
  // Returns how many are now resident.
  std::size_t load_ahead(std::span<const std::string_view> keys, bool force);

  // Takes a durable read of keys[rows[j]] (loaded row j, result j): found vectors go to out and
  // mask and are offered to the memory store through cache_found(j, put), which calls put() when
  // caching is safe; corrupt values are reported.
  template <typename CacheFound>
  void take_durable_read(std::span<const std::string_view> keys, std::span<const std::size_t> rows,
                         const Matrix& loaded, const cache::DurableStore::BatchRead& result,
                         MutableMatrixView out, std::uint8_t* mask, std::int64_t now, ReadCounts& c,
                         CacheFound&& cache_found) {
    cache::MemoryStore::PutCounts evicted;
    for (std::size_t j = 0; j < rows.size(); ++j) {
      const std::string_view key = keys[rows[j]];
      using R = cache::DurableStore::ReadResult;
      switch (result.results[j]) {
        case R::Found:
          cache_found(j, [&] {
            memory.put(key, loaded.row(j), result.expiry_ms[j], /*only_if_absent=*/true, now,
                       evicted);
          });
          std::memcpy(out.row(rows[j]), loaded.row(j), options.dim * sizeof(float));
          mask[rows[j]] = 1;
          ++c.durable_hits;
          break;
        case R::Expired:
          ++c.expired;
          break;
        case R::Corrupt:
          note_corrupt(key, result.reasons[j]);
          break;
        case R::Missing:
          break;
      }
    }
    add(counters.local().evictions, evicted.evicted_live);
    add(counters.local().expired_removed, evicted.evicted_expired);
  }

  // Reads keys[rows] from the durable store into out and mask and offers what it found to the
  // memory store (unless a writer took the key's stripe meanwhile); adds to c. The one durable read
  // path: `on_fiber` waits on the store's async form (suspending only the fiber) instead of
  // blocking the thread.
  void read_durable(std::span<const std::string_view> keys, std::span<const std::size_t> rows,
                    MutableMatrixView out, std::uint8_t* mask, std::int64_t now, ReadCounts& c,
                    bool on_fiber);
  // Fills out rows of hits; mask[i] = 1 for a hit. Counts hits/misses when count_it is set.
  std::vector<std::uint8_t> read(std::span<const std::string_view> keys, MutableMatrixView out,
                                 bool count_it);

  // --- the write path (inputs already validated) ------------------------------------------------
  // One write: the durable store gets the whole batch (one write batch), then the memory store;
  // `parallel`: the memory store's copies run in chunks across the Resources' arena (Cpu tier).
  void write(std::span<const std::string_view> keys, MatrixView values, std::int64_t expiry_ms,
             bool parallel = false);
  // write() for a caller that holds the keys' stripes.
  void write_held(std::span<const std::string_view> keys, MatrixView values, std::int64_t expiry_ms,
                  bool parallel = false);

  void validate_put(std::span<const std::string_view> keys, MatrixView values) const {
    check_matrix("values", values.rows(), values.dim(), keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      check_storable(keys[i], i);
      check_values(values.row(i), i, keys[i]);
    }
  }

  void validate_get(std::span<const std::string_view> keys, MutableMatrixView out) const {
    check_matrix("out", out.rows(), out.dim(), keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) check_key(keys[i], i);
  }

  // Validates a get_or_compute call; returns the expiry its computed values get.
  std::int64_t validate_get_or_compute(std::span<const std::string_view> keys,
                                       MutableMatrixView out, const EmbedFn& embed,
                                       const Ttl& ttl) const {
    check_matrix("out", out.rows(), out.dim(), keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) check_storable(keys[i], i);
    const std::int64_t expiry_ms = expiry_for(ttl, now_unix_ms());
    if (!embed) throw Error(ErrorCode::InvalidArgument, "get_or_compute: embed function is empty");
    return expiry_ms;
  }
  // Inputs already validated. count_reads false: the caller counted these keys' reads already.
  std::size_t get_or_compute(std::span<const std::string_view> keys, MutableMatrixView out,
                             const EmbedFn& embed, std::int64_t expiry_ms, bool count_reads = true);

  // The memory part of a read on the Fiber tier, served on the caller (no hop): fills memory hits
  // and returns the rows left for the durable store (none without one).
  std::vector<std::size_t> read_memory_first(std::span<const std::string_view> keys,
                                             MutableMatrixView out, std::uint8_t* mask) {
    ReadCounts c;
    std::vector<std::size_t> absent = read_memory_tier(keys, out, mask, now_unix_ms(), c);
    if (!durable) absent.clear();  // final misses
    count(c, keys.size() - absent.size());
    return absent;
  }
  // The rest of it: the absent rows read from the durable store in chunks, as concurrent fibers.
  Future<std::vector<std::uint8_t>> read_durable_on_fibers(
      std::vector<std::string_view> views, MutableMatrixView out, std::vector<std::uint8_t> mask,
      std::vector<std::size_t> absent, std::shared_ptr<cache::PlacedOperation> op);

  // --- the Fiber tier (embedding_cache_async.cpp): inputs validated; views and the caller's
  // buffers must stay valid until the future is ready; `op` is finished when the work is.
  Future<std::vector<std::uint8_t>> get_batch_on_fibers(std::vector<std::string_view> views,
                                                        MutableMatrixView out,
                                                        std::shared_ptr<cache::PlacedOperation> op);
  Future<void> put_batch_on_fibers(std::vector<std::string_view> views, MatrixView values,
                                   std::int64_t expiry_ms,
                                   std::shared_ptr<cache::PlacedOperation> op);
  Future<std::size_t> get_or_compute_on_fibers(std::vector<std::string_view> views,
                                               MutableMatrixView out, const EmbedFn& embed,
                                               std::int64_t expiry_ms,
                                               std::shared_ptr<cache::PlacedOperation> op);

  // --- every tier (embedding_cache_tiers.cpp): inputs validated; runs op's tier, waits, and
  // finishes op.
  std::vector<std::uint8_t> get_batch_on(cache::PlacedOperation& op,
                                         std::span<const std::string_view> keys,
                                         MutableMatrixView out);
  void put_batch_on(cache::PlacedOperation& op, std::span<const std::string_view> keys,
                    MatrixView values, std::int64_t expiry_ms);
  std::size_t get_or_compute_on(cache::PlacedOperation& op, std::span<const std::string_view> keys,
                                MutableMatrixView out, const EmbedFn& embed,
                                std::int64_t expiry_ms);
  std::vector<std::vector<KeyHit>> search_on(cache::PlacedOperation& op, MatrixView queries,
                                             std::size_t k, Metric metric);

  // Compact stores (embedding_cache_compact.cpp): the options checked; `values` as every later
  // read returns them (rounded to durable_storage into scratch); exact compact-memory search.
  void check_storage_options() const;
  MatrixView as_durably_stored(MatrixView values, Matrix& scratch) const;
  std::vector<std::vector<KeyHit>> exact_compact_search(MatrixView queries, std::size_t k,
                                                        Metric metric, std::int64_t now_ms,
                                                        Tier tier);
};

}  // namespace hetcache
