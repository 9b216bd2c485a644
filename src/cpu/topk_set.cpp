#include "cpu/topk_set.hpp"

#include <algorithm>
#include <numeric>

namespace hetcache::cpu {

TopKSet::TopKSet(std::size_t num_queries, std::size_t k)
    : k_(k), keys_(num_queries * k), ids_(num_queries * k), lists_(num_queries) {
  for (std::size_t q = 0; q < num_queries; ++q) {
    lists_[q] = TopKList{keys_.data() + q * k, ids_.data() + q * k, 0, k, 0.0f, true};
  }
}

void TopKSet::merge(const TopKSet& other) {
  for (std::size_t q = 0; q < lists_.size(); ++q) {
    const TopKList& from = other.lists_[q];
    for (std::size_t i = 0; i < from.size; ++i) topk_offer(lists_[q], from.keys[i], from.ids[i]);
  }
}

void TopKSet::write_hits(Hits& hits, std::size_t first_query, MetricKind metric) const {
  std::vector<std::size_t> order;
  for (std::size_t q = 0; q < lists_.size(); ++q) {
    const TopKList& list = lists_[q];
    order.resize(list.size);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return entry_worse(list.keys[b], list.ids[b], list.keys[a], list.ids[a]);
    });
    auto scores = hits.mutable_scores(first_query + q);
    auto ids = hits.mutable_ids(first_query + q);
    for (std::size_t i = 0; i < list.size; ++i) {
      const float key = list.keys[order[i]];
      scores[i] = metric == MetricKind::L2 ? -key : key;
      ids[i] = list.ids[order[i]];
    }
  }
}

}  // namespace hetcache::cpu
