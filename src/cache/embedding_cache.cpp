// EmbeddingCache: validation at the API boundary, the two tiers kept consistent, single-flight
// computation of misses, and the counters behind stats() and health().
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "cache/expiry.hpp"
#include "cache/memory_store.hpp"
#include "cache/rocksdb_store.hpp"
#include "cache/single_flight.hpp"
#include "cache/value_format.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace hetcache {
namespace {

constexpr std::size_t kMaxKeyBytes = 64 * 1024;
constexpr std::size_t kStripes = 64;
constexpr std::size_t kMaxLoggedCorruptKeys = 10000;

using cache::now_unix_ms;

std::string quoted_prefix(std::string_view key) {
  constexpr std::size_t kShown = 40;
  return "'" + std::string(key.substr(0, kShown)) + (key.size() > kShown ? "...'" : "'");
}

// Expiry for a put now: saturates at "never" instead of overflowing.
std::int64_t expiry_for(const Ttl& ttl, std::int64_t now_ms) {
  if (!ttl) return cache::kNeverExpires;
  const auto ms = ttl->count();
  if (ms <= 0) {
    throw Error(ErrorCode::InvalidArgument,
                "ttl must be positive, got " + std::to_string(ms) + " ms");
  }
  if (ms >= cache::kNeverExpires - now_ms) return cache::kNeverExpires;
  return now_ms + ms;
}

struct Counters {
  std::atomic<std::uint64_t> hits{0}, memory_hits{0}, durable_hits{0}, misses{0}, expired{0},
      expired_removed{0}, evictions{0}, corrupt_reads{0}, durable_errors{0}, get_calls{0},
      get_batch_calls{0}, put_calls{0}, put_batch_calls{0}, remove_calls{0}, search_calls{0},
      similarity_calls{0}, get_or_compute_calls{0}, embed_calls{0}, embedded_keys{0};
};

void add(std::atomic<std::uint64_t>& counter, std::uint64_t n) {
  if (n != 0) counter.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace

struct EmbeddingCache::Impl {
  CacheOptions options;
  SimilarityEngine engine;
  cache::MemoryStore memory;
  std::unique_ptr<cache::RocksDbStore> durable;
  cache::SingleFlight flights;
  Counters counters;
  // Writers of a key hold its stripe exclusively across both tiers; a read-through holds it shared
  // across its durable read and memory insert, so a concurrent put or remove cannot be undone by a
  // stale read-through. Memory hits take no stripe.
  mutable std::array<std::shared_mutex, kStripes> stripes;
  std::mutex corrupt_log_mutex;
  std::unordered_set<std::string> corrupt_logged;

  explicit Impl(CacheOptions opts)
      : options(std::move(opts)),
        engine(options.similarity),
        memory(options.dim, options.max_bytes, options.max_entries) {
    if (!(options.min_healthy_hit_rate >= 0.0 && options.min_healthy_hit_rate <= 1.0)) {
      throw Error(ErrorCode::InvalidArgument, "min_healthy_hit_rate must be in [0, 1], got " +
                                                  std::to_string(options.min_healthy_hit_rate));
    }
    if (options.durable)
      durable = std::make_unique<cache::RocksDbStore>(*options.durable, options.dim);
  }

  void log(const std::string& message) {
    if (options.log) {
      options.log(message);
    } else {
      std::cerr << "hetcache: " << message << '\n';
    }
  }

  // --- validation (before anything changes) ---------------------------------------------------
  void check_key(std::string_view key, std::size_t index) const {
    if (key.empty())
      throw Error(ErrorCode::InvalidArgument, "key #" + std::to_string(index) + " is empty");
    if (key.size() > kMaxKeyBytes) {
      throw Error(ErrorCode::InvalidArgument,
                  "key #" + std::to_string(index) + " " + quoted_prefix(key) + " is " +
                      std::to_string(key.size()) + " bytes; the limit is 65536");
    }
  }
  void check_storable(std::string_view key, std::size_t index) const {
    check_key(key, index);
    if (memory.charge(key.size()) > memory.max_charge()) {
      throw Error(ErrorCode::InvalidArgument,
                  "key #" + std::to_string(index) + " needs " +
                      std::to_string(memory.charge(key.size())) +
                      " bytes of memory tier, more than one shard holds (" +
                      std::to_string(memory.max_charge()) + "); raise max_bytes");
    }
  }
  void check_values(const float* row, std::size_t index, std::string_view key) const {
    if (options.allow_non_finite) return;
    // Branch-free scan (vectorises): a float is NaN or Inf exactly when its exponent is all ones.
    std::uint32_t any_bad = 0;
    for (std::size_t j = 0; j < options.dim; ++j) {
      any_bad |= static_cast<std::uint32_t>((std::bit_cast<std::uint32_t>(row[j]) & 0x7f800000u) ==
                                            0x7f800000u);
    }
    if (any_bad == 0) return;
    for (std::size_t j = 0; j < options.dim; ++j) {
      if (!std::isfinite(row[j])) {
        throw Error(ErrorCode::InvalidArgument,
                    "value for key #" + std::to_string(index) + " " + quoted_prefix(key) +
                        " has a non-finite number at index " + std::to_string(j) +
                        " (set allow_non_finite to store it)");
      }
    }
  }
  void check_matrix(const char* what, std::size_t rows, std::size_t dim,
                    std::size_t want_rows) const {
    if (dim != options.dim) {
      throw Error(ErrorCode::DimensionMismatch, std::string(what) + " has dim " +
                                                    std::to_string(dim) + "; the cache has dim " +
                                                    std::to_string(options.dim));
    }
    if (rows != want_rows) {
      throw Error(ErrorCode::InvalidArgument, std::string(what) + " has " + std::to_string(rows) +
                                                  " rows for " + std::to_string(want_rows) +
                                                  " keys");
    }
  }

  // --- stripes ----------------------------------------------------------------------------------
  static std::size_t stripe_of(std::string_view key) {
    return XXH3_64bits(key.data(), key.size()) % kStripes;
  }
  template <typename Keys>
  std::uint64_t stripe_mask(const Keys& keys) const {
    std::uint64_t mask = 0;
    for (const auto& key : keys) mask |= std::uint64_t{1} << stripe_of(key);
    return mask;
  }
  // Locks the stripes of a mask in ascending order (no deadlock between batches).
  template <bool Exclusive>
  class StripeLocks {
   public:
    StripeLocks(std::array<std::shared_mutex, kStripes>& stripes, std::uint64_t mask)
        : stripes_(stripes), mask_(mask) {
      for (std::size_t i = 0; i < kStripes; ++i) {
        if ((mask_ >> i) & 1) {
          if constexpr (Exclusive)
            stripes_[i].lock();
          else
            stripes_[i].lock_shared();
        }
      }
    }
    ~StripeLocks() {
      for (std::size_t i = kStripes; i-- > 0;) {
        if ((mask_ >> i) & 1) {
          if constexpr (Exclusive)
            stripes_[i].unlock();
          else
            stripes_[i].unlock_shared();
        }
      }
    }
    StripeLocks(const StripeLocks&) = delete;
    StripeLocks& operator=(const StripeLocks&) = delete;

   private:
    std::array<std::shared_mutex, kStripes>& stripes_;
    std::uint64_t mask_;
  };

  void note_corrupt(std::string_view key, std::string_view reason) {
    counters.corrupt_reads.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(corrupt_log_mutex);
    if (corrupt_logged.size() >= kMaxLoggedCorruptKeys) return;
    if (corrupt_logged.emplace(key).second) {
      log("corrupt value for key " + quoted_prefix(key) + " in '" + durable->path() + "' (" +
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
      counters.durable_errors.fetch_add(1, std::memory_order_relaxed);
      throw;
    }
  }

  // --- the read path ----------------------------------------------------------------------------
  // Fills out rows of hits; mask[i] = 1 for a hit. Counts hits/misses when count is set.
  std::vector<std::uint8_t> read(std::span<const std::string_view> keys, MutableMatrixView out,
                                 bool count) {
    const std::int64_t now = now_unix_ms();
    std::vector<std::uint8_t> mask(keys.size(), 0);
    std::vector<std::size_t> absent;
    std::uint64_t memory_hits = 0, expired = 0;
    std::vector<cache::MemoryStore::Lookup> found(keys.size());
    memory.get_batch(keys, out.data(), out.stride(), now, found.data());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      switch (found[i]) {
        case cache::MemoryStore::Lookup::Hit:
          mask[i] = 1;
          ++memory_hits;
          break;
        case cache::MemoryStore::Lookup::Expired:
          ++expired;
          break;
        case cache::MemoryStore::Lookup::Miss:
          absent.push_back(i);
          break;
      }
    }
    std::uint64_t durable_hits = 0;
    if (durable && !absent.empty()) {
      std::vector<std::string_view> absent_keys;
      absent_keys.reserve(absent.size());
      for (const auto i : absent) absent_keys.push_back(keys[i]);
      Matrix loaded(absent.size(), options.dim);
      cache::RocksDbStore::BatchRead result;
      StripeLocks<false> locks(stripes, stripe_mask(absent_keys));
      durable_call(
          [&] { durable->get_batch(absent_keys, loaded.data(), loaded.stride(), now, result); });
      cache::MemoryStore::PutCounts evicted;
      for (std::size_t j = 0; j < absent.size(); ++j) {
        using R = cache::RocksDbStore::ReadResult;
        switch (result.results[j]) {
          case R::Found:
            memory.put(absent_keys[j], loaded.row(j), result.expiry_ms[j], /*only_if_absent=*/true,
                       now, evicted);
            std::memcpy(out.row(absent[j]), loaded.row(j), options.dim * sizeof(float));
            mask[absent[j]] = 1;
            ++durable_hits;
            break;
          case R::Expired:
            ++expired;
            break;
          case R::Corrupt:
            note_corrupt(absent_keys[j], result.reasons[j]);
            break;
          case R::Missing:
            break;
        }
      }
      add(counters.evictions, evicted.evicted_live);
      add(counters.expired_removed, evicted.evicted_expired);
    }
    if (count) {
      add(counters.memory_hits, memory_hits);
      add(counters.durable_hits, durable_hits);
      add(counters.hits, memory_hits + durable_hits);
      add(counters.misses, keys.size() - memory_hits - durable_hits);
      add(counters.expired, expired);
    }
    return mask;
  }

  // --- the write path (inputs already validated) ------------------------------------------------
  void write(std::span<const std::string_view> keys, MatrixView values, std::int64_t expiry_ms) {
    const std::int64_t now = now_unix_ms();
    StripeLocks<true> locks(stripes, stripe_mask(keys));
    if (durable) {
      durable_call([&] { durable->put_batch(keys, values.data(), values.stride(), expiry_ms); });
    }
    cache::MemoryStore::PutCounts evicted;
    memory.put_batch(keys, values.data(), values.stride(), expiry_ms, /*only_if_absent=*/false, now,
                     evicted);
    add(counters.evictions, evicted.evicted_live);
    add(counters.expired_removed, evicted.evicted_expired);
  }

  void validate_put(std::span<const std::string_view> keys, MatrixView values) const {
    check_matrix("values", values.rows(), values.dim(), keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      check_storable(keys[i], i);
      check_values(values.row(i), i, keys[i]);
    }
  }

  std::size_t get_or_compute(std::span<const std::string_view> keys, MutableMatrixView out,
                             const EmbedFn& embed, const Ttl& ttl);
};

// --- get_or_compute
// -------------------------------------------------------------------------------
std::size_t EmbeddingCache::Impl::get_or_compute(std::span<const std::string_view> keys,
                                                 MutableMatrixView out, const EmbedFn& embed,
                                                 const Ttl& ttl) {
  check_matrix("out", out.rows(), out.dim(), keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) check_storable(keys[i], i);
  const std::int64_t expiry_ms = expiry_for(ttl, now_unix_ms());
  if (!embed) throw Error(ErrorCode::InvalidArgument, "get_or_compute: embed function is empty");

  const std::vector<std::uint8_t> mask = read(keys, out, /*count=*/true);
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
      counters.embed_calls.fetch_add(1, std::memory_order_relaxed);
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
      add(counters.embedded_keys, views.size());
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

// --- the public class
// -----------------------------------------------------------------------------
EmbeddingCache::EmbeddingCache(CacheOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
EmbeddingCache::~EmbeddingCache() = default;

std::size_t EmbeddingCache::dim() const noexcept { return impl_->options.dim; }
bool EmbeddingCache::has_durable_tier() const noexcept { return impl_->durable != nullptr; }

bool EmbeddingCache::get(std::string_view key, std::span<float> out) {
  impl_->counters.get_calls.fetch_add(1, std::memory_order_relaxed);
  impl_->check_key(key, 0);
  if (out.size() != dim()) {
    throw Error(ErrorCode::DimensionMismatch, "get: out has " + std::to_string(out.size()) +
                                                  " floats; the cache has dim " +
                                                  std::to_string(dim()));
  }
  const std::string_view keys[] = {key};
  return impl_->read(keys, MutableMatrixView(out.data(), 1, dim()), true)[0] != 0;
}

std::optional<std::vector<float>> EmbeddingCache::get(std::string_view key) {
  std::vector<float> value(dim());
  if (!get(key, std::span<float>(value))) return std::nullopt;
  return value;
}

void EmbeddingCache::put(std::string_view key, std::span<const float> value, Ttl ttl) {
  impl_->counters.put_calls.fetch_add(1, std::memory_order_relaxed);
  if (value.size() != dim()) {
    throw Error(ErrorCode::DimensionMismatch, "put: value has " + std::to_string(value.size()) +
                                                  " floats; the cache has dim " +
                                                  std::to_string(dim()));
  }
  const std::string_view keys[] = {key};
  const MatrixView values(value.data(), 1, dim());
  impl_->validate_put(keys, values);
  impl_->write(keys, values, expiry_for(ttl, now_unix_ms()));
}

bool EmbeddingCache::contains(std::string_view key) {
  impl_->check_key(key, 0);
  if (impl_->memory.contains(key, now_unix_ms())) return true;
  if (!impl_->durable) return false;
  std::vector<float> scratch(dim());
  const std::string_view keys[] = {key};
  return impl_->read(keys, MutableMatrixView(scratch.data(), 1, dim()), false)[0] != 0;
}

bool EmbeddingCache::remove(std::string_view key) {
  impl_->counters.remove_calls.fetch_add(1, std::memory_order_relaxed);
  impl_->check_key(key, 0);
  const std::string_view keys[] = {key};
  Impl::StripeLocks<true> locks(impl_->stripes, impl_->stripe_mask(keys));
  bool existed = false;
  if (impl_->durable) existed = impl_->durable_call([&] { return impl_->durable->remove(key); });
  return impl_->memory.remove(key) || existed;
}

void EmbeddingCache::clear() {
  Impl::StripeLocks<true> locks(impl_->stripes, ~std::uint64_t{0});
  if (impl_->durable) impl_->durable_call([&] { impl_->durable->clear(); });
  impl_->memory.clear();
}

std::size_t EmbeddingCache::cleanup_expired() {
  const std::size_t removed = impl_->memory.cleanup_expired(now_unix_ms());
  add(impl_->counters.expired_removed, removed);
  return removed;
}

void EmbeddingCache::compact() {
  if (impl_->durable) impl_->durable_call([&] { impl_->durable->compact(); });
}

std::vector<std::uint8_t> EmbeddingCache::get_batch(std::span<const std::string> keys,
                                                    MutableMatrixView out) {
  impl_->counters.get_batch_calls.fetch_add(1, std::memory_order_relaxed);
  impl_->check_matrix("out", out.rows(), out.dim(), keys.size());
  std::vector<std::string_view> views(keys.begin(), keys.end());
  for (std::size_t i = 0; i < views.size(); ++i) impl_->check_key(views[i], i);
  return impl_->read(views, out, true);
}

void EmbeddingCache::put_batch(std::span<const std::string> keys, MatrixView values, Ttl ttl) {
  impl_->counters.put_batch_calls.fetch_add(1, std::memory_order_relaxed);
  std::vector<std::string_view> views(keys.begin(), keys.end());
  impl_->validate_put(views, values);
  impl_->write(views, values, expiry_for(ttl, now_unix_ms()));
}

std::size_t EmbeddingCache::get_or_compute(std::span<const std::string> keys, MutableMatrixView out,
                                           const EmbedFn& embed, Ttl ttl) {
  impl_->counters.get_or_compute_calls.fetch_add(1, std::memory_order_relaxed);
  std::vector<std::string_view> views(keys.begin(), keys.end());
  return impl_->get_or_compute(views, out, embed, ttl);
}

std::vector<std::vector<KeyHit>> EmbeddingCache::search(MatrixView queries, std::size_t k,
                                                        Metric metric) {
  impl_->counters.search_calls.fetch_add(1, std::memory_order_relaxed);
  if (queries.dim() != dim() && queries.rows() > 0) {
    throw Error(ErrorCode::DimensionMismatch, "search: queries have dim " +
                                                  std::to_string(queries.dim()) +
                                                  "; the cache has dim " + std::to_string(dim()));
  }
  if (k == 0 || queries.rows() == 0) return std::vector<std::vector<KeyHit>>(queries.rows());
  return impl_->memory.search(impl_->engine, queries, k, metric, now_unix_ms());
}

KeyScores EmbeddingCache::similarity(std::span<const float> query,
                                     std::span<const std::string> keys, Metric metric) {
  impl_->counters.similarity_calls.fetch_add(1, std::memory_order_relaxed);
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
  result.scores = impl_->engine.batch_similarity_search(query, gathered.view(), metric);
  for (std::size_t i = 0; i < views.size(); ++i) {
    if (!result.found[i]) result.scores[i] = std::numeric_limits<float>::quiet_NaN();
  }
  return result;
}

CacheStats EmbeddingCache::stats() const {
  const Counters& c = impl_->counters;
  const auto load = [](const std::atomic<std::uint64_t>& a) {
    return a.load(std::memory_order_relaxed);
  };
  CacheStats s;
  s.entries = impl_->memory.entries();
  s.bytes = impl_->memory.bytes();
  s.capacity_entries = impl_->memory.capacity_entries();
  s.capacity_bytes = impl_->memory.capacity_bytes();
  s.hits = load(c.hits);
  s.memory_hits = load(c.memory_hits);
  s.durable_hits = load(c.durable_hits);
  s.misses = load(c.misses);
  s.expired = load(c.expired);
  s.expired_removed = load(c.expired_removed);
  s.evictions = load(c.evictions);
  s.corrupt_reads = load(c.corrupt_reads);
  s.durable_errors = load(c.durable_errors);
  s.get_calls = load(c.get_calls);
  s.get_batch_calls = load(c.get_batch_calls);
  s.put_calls = load(c.put_calls);
  s.put_batch_calls = load(c.put_batch_calls);
  s.remove_calls = load(c.remove_calls);
  s.search_calls = load(c.search_calls);
  s.similarity_calls = load(c.similarity_calls);
  s.get_or_compute_calls = load(c.get_or_compute_calls);
  s.embed_calls = load(c.embed_calls);
  s.embedded_keys = load(c.embedded_keys);
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
            "memory tier at " + std::to_string(static_cast<int>(fill * 100)) +
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
            std::to_string(s.corrupt_reads) + " corrupt values read from the durable tier");
  }
  if (impl_->durable) {
    const std::string problem = impl_->durable->probe();
    if (!problem.empty()) {
      degrade(HealthStatus::Unhealthy,
              "durable tier '" + impl_->durable->path() + "' unreachable: " + problem);
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
