// ingest_batch: a put_batch that compares each key's stored vector with the new one first, so a
// re-run writes nothing and a changed vector is never dropped or replaced unasked.
//
// The stored vectors are read from the durable store when there is one (it holds every put; the
// read is not cached in memory, so a large ingest does not churn the memory store), else from the
// memory store, with the batch's stripes held until the write is done. The durable store alone
// takes the write (a write of at least its bulk_rows as whole files, DurableStore::put_bulk).
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/cache_impl.hpp"

namespace hetcache {
namespace {

constexpr std::size_t kCompareChunk = 4096;  // keys per read of the stored vectors

enum class Held : std::uint8_t { Absent, Same, Different };

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
  const std::size_t n = views.size(), d = im.options.dim;
  // A batch of more than one chunk is compared (and, above the store's bulk_rows, encoded) on the
  // Cpu tier; a smaller one runs here, on the calling thread (one read and one write batch).
  const bool large = n > kCompareChunk;
  auto op = im.place(im.work(OpKind::Put, OpKind::PutBatch, keys.size()),
                     large ? Tier::Cpu : Tier::Sequential);
  cache::DurableStore::CpuTier cpu;
  cpu.threads = std::size_t(im.resources->core().arena.max_concurrency());
  cpu.run = [&im](std::size_t count, std::size_t chunk, const auto& body) {
    cache::arena_chunks(im.resources->core().arena, count, chunk, body);
  };
  cache::Stripes::Locks locks(im.stripes, cache::Stripes::mask(views));

  // held[i]: what the stores hold for keys[i], read a chunk at a time (memory bounded by a chunk
  // per thread), against the new vector as the store would keep it (a compact store rounds it).
  const StorageType stored_as = im.durable ? im.options.durable_storage : im.options.memory_storage;
  std::vector<Held> held(n, Held::Absent);
  const auto compare = [&](std::size_t first, std::size_t count) {
    const auto chunk = std::span(views).subspan(first, count);
    Matrix stored(count, d);
    std::vector<std::uint8_t> present(count, 0);
    if (im.durable) {
      cache::DurableStore::BatchRead read;
      im.durable_call(
          [&] { im.durable->get_batch(chunk, stored.data(), stored.stride(), now, read); });
      for (std::size_t i = 0; i < count; ++i) {
        using R = cache::DurableStore::ReadResult;
        present[i] = read.results[i] == R::Found;
        if (read.results[i] == R::Corrupt) im.note_corrupt(chunk[i], read.reasons[i]);
      }
    } else {
      std::vector<cache::Lookup> found(count);
      im.memory.get_batch(chunk, stored.data(), stored.stride(), now, found.data());
      for (std::size_t i = 0; i < count; ++i) present[i] = found[i] == cache::Lookup::Hit;
    }
    const MatrixView given = values.slice(first, count);
    Matrix rounded;
    if (stored_as != StorageType::F32) rounded = cache::round_as_stored(stored_as, given);
    const MatrixView incoming = stored_as == StorageType::F32 ? given : rounded.view();
    for (std::size_t i = 0; i < count; ++i) {
      if (present[i])
        held[first + i] =
            same_bits(stored.row(i), incoming.row(i), d) ? Held::Same : Held::Different;
    }
  };
  if (large) {
    cpu.run(n, kCompareChunk, compare);
  } else {
    compare(0, n);
  }

  IngestCounts counts;
  std::vector<std::size_t> to_write;
  std::size_t differing = 0, first_differing = n;
  for (std::size_t i = 0; i < n; ++i) {
    if (held[i] == Held::Absent) {
      ++counts.written;
      to_write.push_back(i);
    } else if (held[i] == Held::Same) {
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
  // With a durable store the batch goes there alone -- as whole table files from bulk_rows on,
  // else one write batch -- and the memory store drops the keys it held (a read reloads them): an
  // ingest of millions of vectors must not push a serving cache's hot entries out, nor pay for
  // copies nobody asked for. A memory-only cache writes its memory store.
  const bool bulk =
      im.durable && im.durable->bulk_rows() > 0 && to_write.size() >= im.durable->bulk_rows();
  const auto write = [&](std::span<const std::string_view> ks, MatrixView rows) {
    if (!im.durable) return im.write_held(ks, rows, expiry_ms);
    if (bulk) {
      im.counters.local().bulk_ingests.fetch_add(1, std::memory_order_relaxed);
      im.durable_call(
          [&] { im.durable->put_bulk(ks, rows.data(), rows.stride(), expiry_ms, cpu); });
    } else {
      im.durable_call([&] { im.durable->put_batch(ks, rows.data(), rows.stride(), expiry_ms); });
    }
    if (im.memory.entries() > 0)
      for (const auto key : ks) im.memory.remove(key);
    if (im.prefetch)
      im.prefetch->set().overwrite_present(ks, rows.data(), rows.stride(), expiry_ms);
  };
  if (to_write.size() == n) {
    write(views, values);
  } else if (!to_write.empty()) {
    std::vector<std::string_view> subset;
    Matrix rows(to_write.size(), d);
    subset.reserve(to_write.size());
    for (std::size_t j = 0; j < to_write.size(); ++j) {
      subset.push_back(views[to_write[j]]);
      std::memcpy(rows.row(j), values.row(to_write[j]), d * sizeof(float));
    }
    write(subset, rows.view());
  }
  im.finish_batch(&op);
  return counts;
}

}  // namespace hetcache
