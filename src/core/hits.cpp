// Hits, the result every tier fills: k (score, id) pairs per query in two flat arrays.
#include <hetcache/similarity.hpp>

namespace hetcache {

Hits::Hits(std::size_t num_queries, std::size_t k)
    : num_queries_(num_queries), k_(k), scores_(num_queries * k), ids_(num_queries * k) {}

std::span<const float> Hits::scores(std::size_t query) const {
  return {scores_.data() + query * k_, k_};
}
std::span<const std::int64_t> Hits::ids(std::size_t query) const {
  return {ids_.data() + query * k_, k_};
}
std::span<float> Hits::mutable_scores(std::size_t query) {
  return {scores_.data() + query * k_, k_};
}
std::span<std::int64_t> Hits::mutable_ids(std::size_t query) {
  return {ids_.data() + query * k_, k_};
}

}  // namespace hetcache
