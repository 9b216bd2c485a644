// Private to src/: owning storage for one bounded top-k list per query, and their merge.
#pragma once

#include <hetcache/similarity.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "compute/cpu/kernel_abi.hpp"

namespace hetcache::cpu {

class TopKSet {
 public:
  TopKSet(std::size_t num_queries, std::size_t k);

  // Bytes a set of this shape allocates (for memory budgets).
  static std::size_t bytes_for(std::size_t num_queries, std::size_t k);
  TopKSet(TopKSet&&) noexcept = default;
  TopKSet& operator=(TopKSet&&) noexcept = default;

  TopKList* lists() noexcept { return lists_.data(); }
  std::size_t num_queries() const noexcept { return lists_.size(); }

  // Offers every entry of `other` (same queries, same k; higher candidate ids than this set's)
  // to this set. The kept entries are the top k under a strict total order.
  void merge(const TopKSet& other);

  // Writes lists[i] into hits rows [first_query + i], best first; for L2 the score is -key.
  void write_hits(Hits& hits, std::size_t first_query, MetricKind metric);

 private:
  std::vector<TopKEntry> entries_;
  std::vector<TopKList> lists_;
};

}  // namespace hetcache::cpu
