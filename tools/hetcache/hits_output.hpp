// The results of `hetcache search`: each query's best hits, written as JSON lines or as a NumPy
// structured array.
#pragma once

#include <hetcache/cache.hpp>

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace hetcache::cli {

// Per query, best first, at most k (what EmbeddingCache::search returns too).
using QueryHits = std::vector<std::vector<KeyHit>>;

// A key as a JSON string body: quotes, backslashes and control characters escaped (keys are
// arbitrary bytes; the rest is written as is).
std::string json_escaped(std::string_view text);

// One line per query: {"query":0,"hits":[{"key":"..","score":0.93},...]}; a score that is not
// finite (possible only in databases written with CacheOptions::allow_non_finite) is null.
void write_hits_jsonl(std::ostream& out, const QueryHits& hits);

// A .npy file (format 1.0) holding a (queries, k) structured array with fields key (bytes, as
// wide as the longest key) and score (float32): np.load(path)["key"]. Where a query has fewer than
// k hits the rest are key b"" and score NaN. NumPy drops trailing NUL bytes of a key.
void write_hits_npy(std::ostream& out, const QueryHits& hits, std::size_t k);

}  // namespace hetcache::cli
