#include "compute/cpu/topk_set.hpp"

#include <algorithm>

namespace hetcache::cpu {
namespace {

// Room for survivors between selections: at least k more, and never fewer than 64, so a
// selection (linear in the buffer) is paid for by many cheap appends.
std::size_t reservoir_capacity(std::size_t k) { return k + std::max<std::size_t>(k, 64); }

bool entry_better(const TopKEntry& a, const TopKEntry& b) {
  return entry_worse(b.key, b.id, a.key, a.id);
}

}  // namespace

void topk_select(TopKList& list) {
  if (list.size <= list.k) return;
  std::nth_element(list.entries, list.entries + (list.k - 1), list.entries + list.size,
                   entry_better);
  list.size = list.k;
  const float kth = list.entries[list.k - 1].key;
  list.threshold = (kth != kth) ? -__builtin_inff() : kth;  // anything beats a NaN k-th entry
  list.open = false;
}

std::size_t TopKSet::bytes_for(std::size_t num_queries, std::size_t k) {
  return num_queries * (reservoir_capacity(k) * sizeof(TopKEntry) + sizeof(TopKList));
}

TopKSet::TopKSet(std::size_t num_queries, std::size_t k)
    : entries_(num_queries * reservoir_capacity(k)), lists_(num_queries) {
  const std::size_t capacity = reservoir_capacity(k);
  for (std::size_t q = 0; q < num_queries; ++q) {
    lists_[q] = TopKList{entries_.data() + q * capacity, 0, capacity, k, 0.0f, true};
  }
}

void TopKSet::merge(const TopKSet& other) {
  for (std::size_t q = 0; q < lists_.size(); ++q) {
    const TopKList& from = other.lists_[q];
    for (std::size_t i = 0; i < from.size; ++i) {
      topk_offer(lists_[q], from.entries[i].key, from.entries[i].id);
    }
  }
}

void TopKSet::write_hits(Hits& hits, std::size_t first_query, MetricKind metric) {
  for (std::size_t q = 0; q < lists_.size(); ++q) {
    TopKList& list = lists_[q];
    topk_select(list);
    std::sort(list.entries, list.entries + list.size, entry_better);
    auto scores = hits.mutable_scores(first_query + q);
    auto ids = hits.mutable_ids(first_query + q);
    for (std::size_t i = 0; i < list.size; ++i) {
      scores[i] = metric == MetricKind::L2 ? -list.entries[i].key : list.entries[i].key;
      ids[i] = list.entries[i].id;
    }
  }
}

}  // namespace hetcache::cpu
