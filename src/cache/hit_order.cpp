// The order of search hits (hetcache::ranks_before): the cache's search, the GPU mirror's search
// and whole-database search all sort and merge with it.
#include <hetcache/cache.hpp>

#include <cmath>

namespace hetcache {

bool ranks_before(const KeyHit& a, const KeyHit& b, Metric metric) noexcept {
  const bool a_nan = std::isnan(a.score), b_nan = std::isnan(b.score);
  if (a_nan != b_nan) return b_nan;
  if (!a_nan && a.score != b.score) {
    return metric == Metric::L2 ? a.score < b.score : a.score > b.score;
  }
  return a.key < b.key;
}

}  // namespace hetcache
