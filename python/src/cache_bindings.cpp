// EmbeddingCache for Python: its constructor and synchronous calls (the asyncio forms' C++ side is
// cache_async_bindings.cpp).
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>
#include <hetcache/scheduler.hpp>

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "cache_state.hpp"
#include "redis_url.hpp"

namespace hetcache::python {
namespace nb = nanobind;
using namespace nb::literals;

namespace {

bool contains_key(const PyCache& c, std::string_view key) {
  auto cache = c.open();
  nb::gil_scoped_release unlocked;
  return cache->contains(key);
}

nb::dict stats_dict(const CacheStats& s) {
  nb::dict d;
  d["entries"] = s.entries;
  d["bytes"] = s.bytes;
  d["capacity_entries"] = s.capacity_entries;
  d["capacity_bytes"] = s.capacity_bytes;
  d["prefetch_entries"] = s.prefetch_entries;
  d["prefetch_capacity"] = s.prefetch_capacity;
  d["gpu_slab_uploads"] = s.gpu_slab_uploads;
#define HETCACHE_PYTHON_STATS_ITEM(name) d[#name] = s.name;
  HETCACHE_CACHE_COUNTERS(HETCACHE_PYTHON_STATS_ITEM)
#undef HETCACHE_PYTHON_STATS_ITEM
  return d;
}

OpenMode open_mode_of(std::string_view text) {
  if (text == "read_write") return OpenMode::ReadWrite;
  if (text == "read_only") return OpenMode::ReadOnly;
  if (text == "follower") return OpenMode::Follower;
  throw Error(ErrorCode::InvalidArgument, "mode = '" + std::string(text) +
                                              "': expected 'read_write', 'read_only' or 'follower'");
}

// (keys, ids, scores) of a hit list per query: ids and scores padded with -1 / NaN to the
// longest list.
nb::tuple hit_lists(const std::vector<std::vector<KeyHit>>& hits) {
  std::size_t width = 0;
  for (const auto& h : hits) width = std::max(width, h.size());
  OutMatrix scores = new_matrix(hits.size(), width);
  std::unique_ptr<std::int64_t[]> id_buffer(
      new std::int64_t[std::max<std::size_t>(1, hits.size() * width)]);
  std::int64_t* ids = id_buffer.get();
  nb::list keys;
  for (std::size_t i = 0; i < hits.size(); ++i) {
    nb::list row;
    for (std::size_t j = 0; j < width; ++j) {
      const bool has = j < hits[i].size();
      if (has) row.append(nb::str(hits[i][j].key.data(), hits[i][j].key.size()));
      scores.view.row(i)[j] = has ? hits[i][j].score : std::numeric_limits<float>::quiet_NaN();
      ids[i * width + j] = has ? hits[i][j].id : -1;
    }
    keys.append(row);
  }
  auto id_array = numpy_owning(std::move(id_buffer), ids, {hits.size(), width});
  return nb::make_tuple(keys, id_array, scores.array);
}

OnConflict on_conflict_of(std::string_view text) {
  if (text == "error") return OnConflict::Error;
  if (text == "overwrite") return OnConflict::Overwrite;
  if (text == "skip") return OnConflict::Skip;
  throw Error(ErrorCode::InvalidArgument,
              "on_conflict = '" + std::string(text) + "': expected 'error', 'overwrite' or 'skip'");
}

void init_cache(PyCache* self, std::int64_t dim, std::optional<std::string> path,
                std::optional<std::string> redis, std::string collection, Strategy strategy,
                std::optional<double> ttl, std::int64_t memory_bytes, std::int64_t max_entries,
                std::string_view mode, bool synced_writes, bool allow_non_finite,
                StorageType memory_storage, ScoreMode search_mode, StorageType durable_storage) {
  CacheOptions o;
  o.memory_storage = memory_storage;
  o.durable_storage = durable_storage;
  o.search_mode = search_mode;
  o.dim = count_of(dim, "dim");
  o.max_bytes = count_of(memory_bytes, "memory_bytes");
  o.max_entries = count_of(max_entries, "max_entries");
  o.allow_non_finite = allow_non_finite;
  o.scheduler.strategy = strategy;
  const SchedulerConfig scheduler_config = o.scheduler;
  const OpenMode open_mode = open_mode_of(mode);
  if (path && redis)
    throw Error(ErrorCode::InvalidArgument, "path and redis: give at most one durable store");
  if (path) {
    RocksDbOptions r;
    r.path = *path;
    r.collection = collection;
    r.mode = open_mode;
    r.durability = synced_writes ? Durability::SyncedWal : Durability::AsyncWal;
    o.durable = std::move(r);
  } else if (redis) {
    RedisOptions r = parse_redis_url(*redis);
    if (collection != "default") r.key_prefix += collection + ":";
    o.redis = std::move(r);
  }
  if (open_mode != OpenMode::ReadWrite && !path)
    throw Error(ErrorCode::InvalidArgument,
                "mode = '" + std::string(mode) + "': only for a database directory (path)");
  Ttl default_ttl = ttl_of(ttl, std::nullopt);
  std::shared_ptr<EmbeddingCache> cache;
  {
    nb::gil_scoped_release unlocked;  // opening a database reads its files
    cache = std::make_shared<EmbeddingCache>(std::move(o));
  }
  new (self) PyCache{std::move(cache), default_ttl, static_cast<std::size_t>(dim),
                     std::make_shared<Scheduler>(scheduler_config)};
}

}  // namespace

void bind_cache(nb::module_& m) {
  auto cls = nb::class_<PyCache>(
      m, "EmbeddingCache",
      "Vectors of one dimension keyed by strings: a bounded memory store over an optional "
      "durable store (a RocksDB directory, or a Redis server shared by many machines), with "
      "search over what is cached. Thread-safe; every call releases the GIL while it works.")
      .def("__init__", &init_cache, "dim"_a, "path"_a = nb::none(), nb::kw_only(),
           "redis"_a = nb::none(), "collection"_a = "default", "strategy"_a = Strategy::Hybrid,
           "ttl"_a = nb::none(), "memory_bytes"_a = std::int64_t{1} << 30, "max_entries"_a = 0,
           "mode"_a = "read_write", "synced_writes"_a = false, "allow_non_finite"_a = false,
           "memory_storage"_a = StorageType::F32, "search_mode"_a = ScoreMode::Exact,
           "durable_storage"_a = StorageType::F32,
           "dim: floats per vector. path: a RocksDB database directory (created when missing); "
           "redis: 'host:port' or 'redis://[:password@]host:port[/db]' instead. collection: "
           "the collection within the database (RocksDB), or a key prefix (Redis). strategy: "
           "how operations are placed (default HYBRID). ttl: default time to live of a put, in "
           "seconds (None: forever). memory_bytes: the memory store's bound (default 1 GiB); "
           "max_entries: an entry bound too (0: none). mode (a path only): 'read_write' (one "
           "process at a time), 'read_only' (an existing database as it is now, writing nothing; "
           "any number of processes) or 'follower' (follows a writer in another process). "
           "synced_writes: fsync the log before a put "
           "returns. allow_non_finite: accept NaN / Inf values. memory_storage: how the memory store "
           "keeps vectors (F32, or F16 / BF16 / I8: ~1.9x / ~3.4x the entries in memory_bytes at "
           "d = 768; get returns a memory hit decoded). search_mode: how search ranks a compact "
           "memory store (EXACT: the f32 results, re-scored from the durable store, which it "
           "needs; FAST: the compact scores). durable_storage: how the durable store writes "
           "values (F32, or F16 / BF16 / I8: 2 or 1 bytes per element on disk and on the wire; "
           "every later read returns the value rounded to it; needs path or redis).")
      .def_prop_ro("dim", [](const PyCache& c) { return c.dim; }, "Floats per vector.")
      .def_prop_ro("closed", [](const PyCache& c) { return !c.cache; },
                   "True after close().")
      .def(
          "close", [](PyCache& c) { c.cache.reset(); },
          "Closes the durable store (once calls running in other threads return). Idempotent.")
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); },
           "The cache itself; leaving the with block closes it.")
      .def(
          "__exit__",
          [](PyCache& c, nb::handle, nb::handle, nb::handle) {
            c.cache.reset();
            return false;
          },
          "exc_type"_a.none(), "exc"_a.none(), "traceback"_a.none(),
          "Closes the cache (as close()); exceptions propagate.")
      .def(
          "get",
          [](const PyCache& c, std::string_view key) -> nb::object {
            auto cache = c.open();
            OutMatrix out = new_matrix(1, c.dim);
            bool found = false;
            {
              nb::gil_scoped_release unlocked;
              found = cache->get(key, std::span<float>(out.view.data(), c.dim));
            }
            if (!found) return nb::none();
            return out.array.cast().attr("reshape")(c.dim);
          },
          "key"_a, "The vector stored under key (float32, dim), or None when absent or expired.")
      .def(
          "put",
          [](const PyCache& c, std::string_view key, nb::handle vector, std::optional<double> ttl) {
            auto cache = c.open();
            const InVector v = as_vector(vector, "vector");
            const Ttl t = ttl_of(ttl, c.default_ttl);
            nb::gil_scoped_release unlocked;
            cache->put(key, std::span<const float>(v.data(), v.shape(0)), t);
          },
          "key"_a, "vector"_a, "ttl"_a = nb::none(),
          "Stores vector (dim floats) under key; ttl in seconds (None: the cache's default).")
      .def("contains", &contains_key, "key"_a, "Whether key holds a live vector.")
      .def("__contains__", &contains_key, "key"_a, "Whether key holds a live vector.")
      .def(
          "remove",
          [](const PyCache& c, std::string_view key) {
            auto cache = c.open();
            nb::gil_scoped_release unlocked;
            return cache->remove(key);
          },
          "key"_a, "Removes key from both stores; True when it was present.")
      .def(
          "clear",
          [](const PyCache& c) {
            auto cache = c.open();
            nb::gil_scoped_release unlocked;
            cache->clear();
          },
          "Empties both stores.")
      .def(
          "get_batch",
          [](const PyCache& c, nb::handle keys, nb::handle out) {
            auto cache = c.open();
            const std::vector<std::string> k = keys_of(keys, "keys");
            nb::object rows;
            MutableMatrixView view;
            if (out.is_none()) {
              OutMatrix fresh = new_matrix(k.size(), c.dim);
              rows = nb::cast(fresh.array);
              view = fresh.view;
            } else {
              OutArray given;
              if (!nb::try_cast(out, given, false))
                throw Error(ErrorCode::InvalidArgument,
                            "out: a writable C-contiguous float32 array of len(keys) x dim");
              if (given.shape(0) != k.size() || given.shape(1) != c.dim)
                throw Error(ErrorCode::InvalidArgument,
                            "out: shape " + std::to_string(given.shape(0)) + " x " +
                                std::to_string(given.shape(1)) + ", expected " +
                                std::to_string(k.size()) + " x " + std::to_string(c.dim));
              rows = nb::borrow(out);
              view = MutableMatrixView(given.data(), k.size(), c.dim);
            }
            std::vector<std::uint8_t> found;
            {
              nb::gil_scoped_release unlocked;
              found = cache->get_batch(k, view);
            }
            return nb::make_tuple(rows, mask_of(std::move(found)));
          },
          "keys"_a, "out"_a = nb::none(),
          "(vectors, found): a float32 array of len(keys) x dim, row i for keys[i], and a bool "
          "array marking the hits. Rows of misses are left as they were (undefined in a new "
          "array). out: an array to write into instead of a new one (writable, C-contiguous "
          "float32, len(keys) x dim), returned as vectors -- for a loop that reads batch after "
          "batch without allocating.")
      .def(
          "put_batch",
          [](const PyCache& c, nb::handle keys, nb::handle vectors, std::optional<double> ttl) {
            auto cache = c.open();
            const KeyedRows w = keyed_rows(keys, vectors, "put_batch");
            const Ttl t = ttl_of(ttl, c.default_ttl);
            nb::gil_scoped_release unlocked;
            cache->put_batch(w.keys, view_of(w.values), t);
          },
          "keys"_a, "vectors"_a, "ttl"_a = nb::none(),
          "Stores vectors[i] under keys[i] (vectors: len(keys) x dim, read in place when float32 "
          "C-contiguous). Validated whole before anything is stored.")
      .def(
          "ingest",
          [](const PyCache& c, nb::handle keys, nb::handle vectors, std::string_view on_conflict,
             std::optional<double> ttl) {
            auto cache = c.open();
            const KeyedRows w = keyed_rows(keys, vectors, "ingest");
            const OnConflict rule = on_conflict_of(on_conflict);
            const Ttl t = ttl_of(ttl, c.default_ttl);
            IngestCounts counts;
            {
              nb::gil_scoped_release unlocked;
              counts = cache->ingest_batch(w.keys, view_of(w.values), rule, t);
            }
            nb::dict d;
            d["written"] = counts.written;
            d["unchanged"] = counts.unchanged;
            d["overwritten"] = counts.overwritten;
            d["skipped"] = counts.skipped;
            return d;
          },
          "keys"_a, "vectors"_a, "on_conflict"_a = "error", "ttl"_a = nb::none(),
          "put_batch for data that may be loaded again: keys holding the same bits are left "
          "alone; a different vector raises ConflictError (on_conflict='error', nothing "
          "written), is replaced ('overwrite') or kept ('skip'). Large batches on a RocksDB "
          "store go in as table files. Returns counts: written, unchanged, overwritten, skipped.")
      .def(
          "get_or_compute",
          [](const PyCache& c, nb::handle keys, nb::object fn, std::optional<double> ttl) {
            auto cache = c.open();
            const std::vector<std::string> k = keys_of(keys, "keys");
            OutMatrix out = new_matrix(k.size(), c.dim);
            const EmbedFn embed = embed_fn(std::move(fn), c.dim);
            const Ttl t = ttl_of(ttl, c.default_ttl);
            {
              nb::gil_scoped_release unlocked;
              (void)cache->get_or_compute(k, out.view, embed, t);
            }
            return out.array;
          },
          "keys"_a, "fn"_a, "ttl"_a = nb::none(),
          "The vectors of keys (len(keys) x dim), computing the missing ones with one call "
          "fn(missing_keys) -> array (len(missing_keys) x dim) over the distinct misses (not "
          "called when all are cached). Threads asking for the same missing key at once wait for "
          "one computation; what fn raises reaches each of them.")
      .def(
          "search",
          [](const PyCache& c, nb::handle queries, std::int64_t k, Metric metric) {
            auto cache = c.open();
            const Queries q = queries_of(queries);
            const std::size_t kk = count_of(k, "k");
            std::vector<std::vector<KeyHit>> hits;
            {
              nb::gil_scoped_release unlocked;
              hits = cache->search(q.view(), kk, metric);
            }
            return hit_lists(hits);
          },
          "queries"_a, "k"_a = 10, "metric"_a = Metric::Cosine,
          "Top-k over the memory store: (keys, ids, scores) -- a list of key lists, one per "
          "query, and int64 / float32 arrays of queries x k (ids are RocksDB row ids, -1 where "
          "there is none; a query with fewer hits is padded with id -1 and score NaN). Ranking: "
          "better score first, NaN after every number, equal scores by key.")
      .def(
          "content_key",
          [](const PyCache& c, std::string_view model, std::string_view text) {
            return c.open()->content_key(model, text);
          },
          "model"_a, "text"_a, "A stable key for (model, text) in this cache (32 hex digits).")
      .def(
          "stats", [](const PyCache& c) { return stats_dict(c.open()->stats()); },
          "Counters and gauges as a dict (hits, misses, evictions, entries, bytes, ...).")
      .def(
          "metrics", [](const PyCache& c) { return c.open()->metrics().to_prometheus(); },
          "Where operations ran (per tier: operations, latency quantiles, decisions) in the "
          "Prometheus text format, metric names prefixed hetcache_.");
  cls.def(
      "search_database",
      [](const PyCache& c, nb::handle queries, std::int64_t k, Metric metric) {
        auto cache = c.open();
        const Queries q = queries_of(queries);
        const std::size_t kk = count_of(k, "k");
        Scheduler::DatabaseHits found;
        {
          nb::gil_scoped_release unlocked;
          found = c.scheduler->search_database(*cache, q.view(), kk, metric);
        }
        return hit_lists(found.hits);
      },
      "queries"_a, "k"_a = 10, "metric"_a = Metric::Cosine,
      "Top-k over every live vector of the RocksDB database (not only what the memory store "
      "holds), streamed in batches placed by the cache's strategy and merged as one search "
      "would rank them: (keys, ids, scores) as search() returns. UnsupportedError without a "
      "RocksDB store.");
  m.def("stored_dimension", &stored_dimension, "path"_a, "collection"_a = "default",
        "The dimension a collection of the database at path was created with; None when there "
        "is no such database or collection (read without taking the lock).");
  m.def(
      "database_collections",
      [](const std::string& path) {
        nb::dict d;
        for (const CollectionInfo& c : database_collections(path)) d[c.name.c_str()] = c.dim;
        return d;
      },
      "path"_a, "The collections of the database at path and their dimensions: {name: dim}.");
  m.def("database_has_writer", &database_has_writer, "path"_a,
        "True when a process has the database open for writing (readers should then open it "
        "with mode='follower').");
  bind_cache_async(cls);
}

}  // namespace hetcache::python
