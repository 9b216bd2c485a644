#include <hetcache/hetcache.hpp>

#include <cstdio>

int main() {
  const float candidates[] = {1, 0, 0, 1, 0.6f, 0.8f};
  const float query[] = {0, 1};
  hetcache::SimilarityEngine engine;
  const hetcache::Hits hits = engine.search(hetcache::MatrixView(query, 1, 2),
                                            hetcache::MatrixView(candidates, 3, 2), 2);
  std::printf("hetcache %s: best id %lld\n", hetcache::version(),
              static_cast<long long>(hits.ids(0)[0]));
  return hits.ids(0)[0] == 1 && hits.ids(0)[1] == 2 ? 0 : 1;
}
