// ingest_batch: a put_batch that compares each key's stored vector with the new one first, so a
// re-run writes nothing and a changed vector is never dropped or replaced unasked.
//
// The stored vectors are read from the durable store when there is one (it holds every put; the
// read is not cached in memory, so a large ingest does not churn the memory store), else from the
// memory store, with the batch's stripes held until the write is done.
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/cache_impl.hpp"

namespace hetcache {
namespace {

bool same_bits(const float* a, const float* b, std::size_t dim) {
  return std::memcmp(a, b, dim * sizeof(float)) == 0;
}

}  // namespace

IngestCounts EmbeddingCache::ingest_batch(std::span<const std::string> keys, MatrixView values,
                                          OnConflict on_conflict, Ttl ttl) {
  Impl& im = *impl_;
  im.counters.local().ingest_batch_calls.fetch_add(1, std::memory_order_relaxed);
  const std::vector<std::string_view> views(keys.begin(), keys.end());
  im.validate_put(views, values);
  {
    std::unordered_map<std::string_view, std::size_t> first_at;
    first_at.reserve(views.size());
    for (std::size_t i = 0; i < views.size(); ++i) {
      const auto [at, fresh] = first_at.emplace(views[i], i);
      if (!fresh) {
        throw Error(ErrorCode::InvalidArgument, "ingest_batch: keys[" + std::to_string(i) + "] " +
                                                    cache::quoted_prefix(views[i]) +
                                                    " repeats keys[" + std::to_string(at->second) +
                                                    "]");
      }
    }
  }
  const std::int64_t now = cache::now_unix_ms();
  const std::int64_t expiry_ms = cache::expiry_for(ttl, now);
  // Runs here, on the calling thread: one read and one write batch (recorded as Sequential).
  auto op = im.place(im.work(OpKind::Put, OpKind::PutBatch, keys.size()), Tier::Sequential);
  cache::Stripes::Locks locks(im.stripes, cache::Stripes::mask(views));

  const std::size_t n = views.size(), d = im.options.dim;
  Matrix stored(n, d);
  std::vector<std::uint8_t> present(n, 0);
  if (im.durable) {
    cache::DurableStore::BatchRead read;
    im.durable_call(
        [&] { im.durable->get_batch(views, stored.data(), stored.stride(), now, read); });
    for (std::size_t i = 0; i < n; ++i) {
      using R = cache::DurableStore::ReadResult;
      present[i] = read.results[i] == R::Found;
      if (read.results[i] == R::Corrupt) im.note_corrupt(views[i], read.reasons[i]);
    }
  } else {
    std::vector<cache::MemoryStore::Lookup> found(n);
    im.memory.get_batch(views, stored.data(), stored.stride(), now, found.data());
    for (std::size_t i = 0; i < n; ++i) present[i] = found[i] == cache::MemoryStore::Lookup::Hit;
  }

  IngestCounts counts;
  std::vector<std::size_t> to_write;
  std::size_t differing = 0, first_differing = n;
  for (std::size_t i = 0; i < n; ++i) {
    if (!present[i]) {
      ++counts.written;
      to_write.push_back(i);
    } else if (same_bits(stored.row(i), values.row(i), d)) {
      ++counts.unchanged;
    } else {
      if (differing++ == 0) first_differing = i;
      if (on_conflict == OnConflict::Overwrite) {
        ++counts.overwritten;
        to_write.push_back(i);
      } else {
        ++counts.skipped;
      }
    }
  }
  if (differing > 0 && on_conflict == OnConflict::Error) {
    throw Error(ErrorCode::Conflict,
                std::to_string(differing) + " of " + std::to_string(n) +
                    " keys already hold a different vector (the first: " +
                    cache::quoted_prefix(views[first_differing]) +
                    "); nothing of this batch was written. OnConflict::Overwrite replaces them, "
                    "OnConflict::Skip keeps them");
  }
  if (to_write.size() == n) {
    im.write_held(views, values, expiry_ms);
  } else if (!to_write.empty()) {
    std::vector<std::string_view> subset;
    Matrix rows(to_write.size(), d);
    subset.reserve(to_write.size());
    for (std::size_t j = 0; j < to_write.size(); ++j) {
      subset.push_back(views[to_write[j]]);
      std::memcpy(rows.row(j), values.row(to_write[j]), d * sizeof(float));
    }
    im.write_held(subset, rows.view(), expiry_ms);
  }
  im.finish_batch(&op);
  return counts;
}

}  // namespace hetcache
