// src/cache: the EmbeddingCache -- the public calls (this file, embedding_cache_async.cpp), where
// each runs once placed (embedding_cache_tiers.cpp), the read and write paths that keep the stores
// consistent (cache_impl.hpp) and prefetching (embedding_cache_prefetch.cpp), over the stores in
// memory/, durable/ and prefetch/. Every operation is placed by the cache's Scheduler (a
// PlacedOperation); nothing here turns a shape into a tier. Threads and the arena come from the
// cache's Resources.
//
// EmbeddingCache: validation at the API boundary, the two stores kept consistent, single-flight
// computation of misses, and the counters behind stats() and health().
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <algorithm>
#include <limits>
#include <unordered_map>

#include "cache/cache_impl.hpp"
#include "cache/durable/rocksdb_families.hpp"
#include "cache/durable/rocksdb_store.hpp"
#include "compute/cpu/kernel_abi.hpp"

namespace hetcache {

// --- get_or_compute ---------------------------------------------------------------------------
std::size_t EmbeddingCache::Impl::get_or_compute(std::span<const std::string_view> keys,
                                                 MutableMatrixView out, const EmbedFn& embed,
                                                 std::int64_t expiry_ms, bool count_reads) {
  const std::vector<std::uint8_t> mask = read(keys, out, count_reads);
  // Distinct missing keys, in first-seen order, with every output row that wants each.
  std::vector<std::string> missing;
  std::vector<std::vector<std::size_t>> rows_of;
  std::unordered_map<std::string_view, std::size_t> position;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (mask[i]) continue;
    const auto [it, inserted] = position.try_emplace(keys[i], missing.size());
    if (inserted) {
      missing.emplace_back(keys[i]);
      rows_of.emplace_back();
    }
    rows_of[it->second].push_back(i);
  }
  if (missing.empty()) return 0;
  const auto fill = [&](std::size_t m, const float* value) {
    for (const auto row : rows_of[m]) std::memcpy(out.row(row), value, options.dim * sizeof(float));
  };

  using FlightPtr = std::shared_ptr<cache::SingleFlight::Flight>;
  std::vector<std::size_t> led, joined;
  std::vector<FlightPtr> flight_of(missing.size());
  for (std::size_t m = 0; m < missing.size(); ++m) {
    auto [flight, leader] = flights.join(missing[m]);
    flight_of[m] = std::move(flight);
    (leader ? led : joined).push_back(m);
  }

  std::size_t computed = 0;
  try {
    // A flight that finished between our read and our join already stored its key: look again.
    std::vector<std::string_view> led_keys;
    for (const auto m : led) led_keys.push_back(missing[m]);
    Matrix again(led.size(), options.dim);
    const std::vector<std::uint8_t> found = read(led_keys, again.mutable_view(), /*count=*/false);
    std::vector<std::size_t> to_compute;  // indices into missing
    for (std::size_t j = 0; j < led.size(); ++j) {
      if (!found[j]) {
        to_compute.push_back(led[j]);
        continue;
      }
      fill(led[j], again.row(j));
      flights.complete(missing[led[j]], flight_of[led[j]], again.row(j), options.dim);
    }
    if (!to_compute.empty()) {
      std::vector<std::string> compute_keys;
      for (const auto m : to_compute) compute_keys.push_back(missing[m]);
      counters.local().embed_calls.fetch_add(1, std::memory_order_relaxed);
      Matrix computed_rows = embed(std::span<const std::string>(compute_keys));
      if (computed_rows.rows() != compute_keys.size() || computed_rows.dim() != options.dim) {
        throw Error(ErrorCode::InvalidArgument, "embed returned " +
                                                    std::to_string(computed_rows.rows()) + " x " +
                                                    std::to_string(computed_rows.dim()) + " for " +
                                                    std::to_string(compute_keys.size()) +
                                                    " keys of dim " + std::to_string(options.dim));
      }
      std::vector<std::string_view> views(compute_keys.begin(), compute_keys.end());
      validate_put(views, computed_rows.view());
      write(views, computed_rows.view(), expiry_ms);
      add(counters.local().embedded_keys, views.size());
      computed = views.size();
      for (std::size_t j = 0; j < to_compute.size(); ++j) {
        fill(to_compute[j], computed_rows.row(j));
        flights.complete(missing[to_compute[j]], flight_of[to_compute[j]], computed_rows.row(j),
                         options.dim);
      }
    }
  } catch (...) {
    // fail() leaves flights we already completed alone, so every led flight can be passed.
    const std::exception_ptr error = std::current_exception();
    for (const auto m : led) flights.fail(missing[m], flight_of[m], error);
    throw;
  }
  // Our own flights are done; now wait for the ones other callers lead.
  for (const auto m : joined) fill(m, cache::SingleFlight::wait(*flight_of[m]).data());
  return computed;
}

// --- the public class -------------------------------------------------------------------------
EmbeddingCache::EmbeddingCache(CacheOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
EmbeddingCache::~EmbeddingCache() = default;

std::size_t EmbeddingCache::dim() const noexcept { return impl_->options.dim; }
bool EmbeddingCache::has_durable_store() const noexcept { return impl_->durable != nullptr; }
const std::shared_ptr<Resources>& EmbeddingCache::resources() const noexcept {
  return impl_->resources;
}

bool EmbeddingCache::get(std::string_view key, std::span<float> out) {
  impl_->counters.local().get_calls.fetch_add(1, std::memory_order_relaxed);
  impl_->follow();
  impl_->check_key(key, 0);
  if (out.size() != dim()) {
    throw Error(ErrorCode::DimensionMismatch, "get: out has " + std::to_string(out.size()) +
                                                  " floats; the cache has dim " +
                                                  std::to_string(dim()));
  }
  const std::string_view keys[] = {key};
  const MutableMatrixView row(out.data(), 1, dim());
  if (impl_->untimed(impl_->small_get_tier, 1)) return impl_->read(keys, row, true)[0] != 0;
  auto op = impl_->place(impl_->work(OpKind::Get, OpKind::GetBatch, 1), std::nullopt);
  return impl_->get_batch_on(op, keys, row)[0] != 0;
}

std::optional<std::vector<float>> EmbeddingCache::get(std::string_view key) {
  std::vector<float> value(dim());
  if (!get(key, std::span<float>(value))) return std::nullopt;
  return value;
}

void EmbeddingCache::put(std::string_view key, std::span<const float> value, Ttl ttl) {
  impl_->counters.local().put_calls.fetch_add(1, std::memory_order_relaxed);
  if (value.size() != dim()) {
    throw Error(ErrorCode::DimensionMismatch, "put: value has " + std::to_string(value.size()) +
                                                  " floats; the cache has dim " +
                                                  std::to_string(dim()));
  }
  const std::string_view keys[] = {key};
  const MatrixView values(value.data(), 1, dim());
  impl_->validate_put(keys, values);
  const std::int64_t expiry_ms = expiry_for(ttl, now_unix_ms());
  if (impl_->untimed(impl_->small_put_tier, 1)) return impl_->write(keys, values, expiry_ms);
  auto op = impl_->place(impl_->work(OpKind::Put, OpKind::PutBatch, 1), std::nullopt);
  impl_->put_batch_on(op, keys, values, expiry_ms);
}

bool EmbeddingCache::contains(std::string_view key) {
  impl_->check_key(key, 0);
  impl_->follow();
  if (impl_->memory.contains(key, now_unix_ms())) return true;
  if (!impl_->durable) return false;
  std::vector<float> scratch(dim());
  const std::string_view keys[] = {key};
  return impl_->read(keys, MutableMatrixView(scratch.data(), 1, dim()), false)[0] != 0;
}

bool EmbeddingCache::remove(std::string_view key) {
  impl_->counters.local().remove_calls.fetch_add(1, std::memory_order_relaxed);
  impl_->check_key(key, 0);
  const std::string_view keys[] = {key};
  cache::Stripes::Locks locks(impl_->stripes, cache::Stripes::mask(keys));
  bool existed = false;
  if (impl_->durable) existed = impl_->durable_call([&] { return impl_->durable->remove(key); });
  if (impl_->prefetch) existed = impl_->prefetch->set().erase(key) || existed;
  return impl_->memory.remove(key) || existed;
}

void EmbeddingCache::clear() {
  cache::Stripes::Locks locks(impl_->stripes, ~std::uint64_t{0});
  if (impl_->durable) impl_->durable_call([&] { impl_->durable->clear(); });
  impl_->memory.clear();
  if (impl_->prefetch) {
    impl_->prefetch->drop_queue();
    impl_->prefetch->set().clear();
  }
}

std::size_t EmbeddingCache::cleanup_expired() {
  const std::int64_t now = now_unix_ms();
  std::size_t removed = impl_->memory.cleanup_expired(now);
  if (impl_->prefetch) removed += impl_->prefetch->set().cleanup_expired(now);
  add(impl_->counters.local().expired_removed, removed);
  return removed;
}

void EmbeddingCache::compact() {
  if (impl_->durable) impl_->durable_call([&] { impl_->durable->compact(); });
}

bool database_has_writer(const std::string& rocksdb_path) {
  return cache::lock_is_held(rocksdb_path);
}

std::optional<std::size_t> stored_dimension(const std::string& rocksdb_path,
                                            std::string_view collection) {
  cache::check_collection_name(collection);
  return cache::RocksDbStore::stored_dim(rocksdb_path, collection);
}

std::vector<CollectionInfo> database_collections(const std::string& rocksdb_path) {
  std::vector<CollectionInfo> out;
  for (auto& [name, dim] : cache::RocksDbStore::collections(rocksdb_path))
    out.push_back({std::move(name), dim});
  return out;
}

ScanCounts EmbeddingCache::scan(const ScanFn& visit, std::size_t batch_rows) {
  if (!impl_->durable)
    throw Error(ErrorCode::Unsupported,
                "scan reads the durable store, and this cache has none (memory-only caches are "
                "searched with search())");
  if (batch_rows == 0) throw Error(ErrorCode::InvalidArgument, "scan: batch_rows must be >= 1");
  impl_->follow();
  ScanCounts counts;
  const std::size_t d = impl_->options.dim;
  impl_->durable->scan(
      batch_rows, now_unix_ms(),
      [&](std::span<const std::string> keys, std::span<const std::int64_t> ids, const float* rows,
          std::size_t count) {
        counts.visited += count;
        visit(keys, ids, MatrixView(rows, count, d));
      },
      counts.expired, counts.corrupt);
  return counts;
}

std::optional<std::uint64_t> EmbeddingCache::estimated_durable_count() {
  if (!impl_->durable) return std::nullopt;
  impl_->follow();
  return impl_->durable->estimated_count();
}

std::vector<std::uint8_t> EmbeddingCache::get_batch(std::span<const std::string> keys,
                                                    MutableMatrixView out,
                                                    std::optional<Tier> tier) {
  impl_->counters.local().get_batch_calls.fetch_add(1, std::memory_order_relaxed);
  impl_->follow();
  const std::vector<std::string_view> views(keys.begin(), keys.end());
  impl_->validate_get(views, out);
  if (!tier && impl_->untimed(impl_->small_get_tier, keys.size()))
    return impl_->read(views, out, true);
  auto op = impl_->place(impl_->work(OpKind::Get, OpKind::GetBatch, keys.size()), tier);
  return impl_->get_batch_on(op, views, out);
}

void EmbeddingCache::put_batch(std::span<const std::string> keys, MatrixView values, Ttl ttl,
                               std::optional<Tier> tier) {
  impl_->counters.local().put_batch_calls.fetch_add(1, std::memory_order_relaxed);
  std::vector<std::string_view> views(keys.begin(), keys.end());
  impl_->validate_put(views, values);
  const std::int64_t expiry_ms = expiry_for(ttl, now_unix_ms());
  if (!tier && impl_->untimed(impl_->small_put_tier, keys.size()))
    return impl_->write(views, values, expiry_ms);
  auto op = impl_->place(impl_->work(OpKind::Put, OpKind::PutBatch, keys.size()), tier);
  impl_->put_batch_on(op, views, values, expiry_ms);
}

void EmbeddingCache::check_put_batch(std::span<const std::string> keys, MatrixView values) const {
  const std::vector<std::string_view> views(keys.begin(), keys.end());
  impl_->validate_put(views, values);
}

std::size_t EmbeddingCache::get_or_compute(std::span<const std::string> keys, MutableMatrixView out,
                                           const EmbedFn& embed, Ttl ttl) {
  impl_->counters.local().get_or_compute_calls.fetch_add(1, std::memory_order_relaxed);
  impl_->follow();
  const std::vector<std::string_view> views(keys.begin(), keys.end());
  const std::int64_t expiry_ms = impl_->validate_get_or_compute(views, out, embed, ttl);
  auto op = impl_->place(impl_->work(OpKind::Get, OpKind::GetBatch, keys.size()), std::nullopt);
  return impl_->get_or_compute_on(op, views, out, embed, expiry_ms);
}

void EmbeddingCache::Impl::check_values(const float* row, std::size_t index,
                                        std::string_view key) const {
  if (options.allow_non_finite) return;
  // The SIMD scan of the engine's ISA first; the loop below only names the bad value.
  if (memory.kernels().all_finite(row, options.dim)) return;
  for (std::size_t j = 0; j < options.dim; ++j) {
    if (!std::isfinite(row[j])) {
      throw Error(ErrorCode::InvalidArgument,
                  "value for key #" + std::to_string(index) + " " + quoted_prefix(key) +
                      " has a non-finite number at index " + std::to_string(j) +
                      " (set allow_non_finite to store it)");
    }
  }
}

void EmbeddingCache::Impl::check_matrix(const char* what, std::size_t rows, std::size_t dim,
                                        std::size_t want_rows) const {
  if (dim != options.dim) {
    throw Error(ErrorCode::DimensionMismatch, std::string(what) + " has dim " +
                                                  std::to_string(dim) + "; the cache has dim " +
                                                  std::to_string(options.dim));
  }
  if (rows != want_rows) {
    throw Error(ErrorCode::InvalidArgument, std::string(what) + " has " + std::to_string(rows) +
                                                " rows for " + std::to_string(want_rows) + " keys");
  }
}

void EmbeddingCache::Impl::fill_row_ids(std::vector<std::vector<KeyHit>>& hits) {
  std::vector<std::string_view> keys;
  for (const auto& query : hits)
    for (const KeyHit& h : query) keys.push_back(h.key);
  std::vector<std::int64_t> ids(keys.size());
  durable_call([&] { durable->row_ids(keys, ids.data()); });
  std::size_t i = 0;
  for (auto& query : hits)
    for (KeyHit& h : query) h.id = ids[i++];
}

std::vector<std::vector<KeyHit>> EmbeddingCache::search(MatrixView queries, std::size_t k,
                                                        Metric metric, std::optional<Tier> tier) {
  impl_->counters.local().search_calls.fetch_add(1, std::memory_order_relaxed);
  impl_->follow();
  if (queries.dim() != dim() && queries.rows() > 0) {
    throw Error(ErrorCode::DimensionMismatch, "search: queries have dim " +
                                                  std::to_string(queries.dim()) +
                                                  "; the cache has dim " + std::to_string(dim()));
  }
  if (k == 0 || queries.rows() == 0) return std::vector<std::vector<KeyHit>>(queries.rows());
  Work work = scheduler::similarity_work(queries.rows(), impl_->memory.entries(), dim());
  work.data_on_gpu = impl_->device_slabs != nullptr;
  work.host_only = impl_->device_slabs == nullptr;
  auto op = impl_->place(work, tier);
  auto hits = impl_->search_on(op, queries, k, metric);
  if (impl_->durable) impl_->fill_row_ids(hits);
  return hits;
}

KeyScores EmbeddingCache::similarity(std::span<const float> query,
                                     std::span<const std::string> keys, Metric metric) {
  impl_->counters.local().similarity_calls.fetch_add(1, std::memory_order_relaxed);
  impl_->follow();
  if (query.size() != dim()) {
    throw Error(ErrorCode::DimensionMismatch,
                "similarity: query has " + std::to_string(query.size()) +
                    " floats; the cache has dim " + std::to_string(dim()));
  }
  std::vector<std::string_view> views(keys.begin(), keys.end());
  for (std::size_t i = 0; i < views.size(); ++i) impl_->check_key(views[i], i);
  Matrix gathered(views.size(), dim());
  KeyScores result;
  result.found = impl_->read(views, gathered.mutable_view(), true);
  // Scoring is placed; the keys were read on this thread (a gather, not a batch get).
  Work work = scheduler::similarity_work(1, views.size(), dim());
  work.host_only = true;
  auto op = impl_->place(work, std::nullopt);
  const Tier tier = op.tier() == Tier::Cpu ? Tier::Cpu : Tier::Sequential;
  result.scores = impl_->engine().batch_similarity_search(query, gathered.view(), metric, tier);
  op.finish(scheduler::compute_execution(tier, impl_->engine()));
  for (std::size_t i = 0; i < views.size(); ++i) {
    if (!result.found[i]) result.scores[i] = std::numeric_limits<float>::quiet_NaN();
  }
  return result;
}

PerformanceMetrics EmbeddingCache::metrics() const {
  PerformanceMetrics m = impl_->scheduler.metrics();
  // Small gets and puts on the calling thread are counted, not timed (Impl::untimed).
  const std::uint64_t n = impl_->counters.total(&cache::CounterStripe::untimed_operations);
  TierMetrics& t = m.tiers[static_cast<std::size_t>(Tier::Sequential)];
  t.operations += n;
  t.decisions += n;
  t.items += impl_->counters.total(&cache::CounterStripe::untimed_items);
  m.total_operations += n;
  return m;
}

CacheStats EmbeddingCache::stats() const {
  CacheStats s;
  impl_->counters.copy_to(s);
  s.entries = impl_->memory.entries();
  s.bytes = impl_->memory.bytes();
  s.capacity_entries = impl_->memory.capacity_entries();
  s.capacity_bytes = impl_->memory.capacity_bytes();
  s.gpu_slab_uploads = impl_->device_slabs != nullptr ? impl_->device_slabs->slab_uploads() : 0;
  if (impl_->prefetch) {
    s.prefetch_entries = impl_->prefetch->set().size();
    s.prefetch_capacity = impl_->prefetch->set().capacity();
  }
  return s;
}

CacheHealth EmbeddingCache::health() {
  const CacheStats s = stats();
  CacheHealth h;
  const auto degrade = [&](HealthStatus level, std::string reason) {
    if (level > h.status) h.status = level;
    h.reasons.push_back(std::move(reason));
  };
  const double fill =
      std::max(static_cast<double>(s.entries) / static_cast<double>(s.capacity_entries),
               static_cast<double>(s.bytes) / static_cast<double>(s.capacity_bytes));
  if (fill >= 0.95 && s.evictions > 0) {
    degrade(HealthStatus::Degraded,
            "memory store at " + std::to_string(static_cast<int>(fill * 100)) +
                "% of its bound and evicting (" + std::to_string(s.evictions) +
                " evictions); raise max_bytes");
  }
  const std::uint64_t lookups = s.hits + s.misses;
  if (lookups >= 1000) {
    const double rate = static_cast<double>(s.hits) / static_cast<double>(lookups);
    if (rate < impl_->options.min_healthy_hit_rate) {
      degrade(HealthStatus::Degraded, "hit rate " + std::to_string(rate) + " is below " +
                                          std::to_string(impl_->options.min_healthy_hit_rate));
    }
  }
  if (s.corrupt_reads > 0) {
    degrade(HealthStatus::Degraded,
            std::to_string(s.corrupt_reads) + " corrupt values read from the durable store");
  }
  if (impl_->durable) {
    const std::string problem = impl_->durable->probe();
    if (!problem.empty()) {
      degrade(HealthStatus::Unhealthy,
              "durable store " + impl_->durable->name() + " unreachable: " + problem +
                  (impl_->degrade ? " (serving the memory store only)" : ""));
    }
  }
  return h;
}

std::string_view to_string(HealthStatus status) noexcept {
  switch (status) {
    case HealthStatus::Healthy:
      return "healthy";
    case HealthStatus::Degraded:
      return "degraded";
    case HealthStatus::Unhealthy:
      return "unhealthy";
  }
  return "unknown";
}

}  // namespace hetcache
