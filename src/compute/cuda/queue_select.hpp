// Private: the GPU tier's select for small k (<= kQueueSelectMaxK), written once for the device and
// the host like the radix select in rank_keys.hpp (tests/gpu/rank_keys_test.cpp runs it on host
// threads with a real barrier).
//
// The radix select reads a row's keys nine times; this one reads them once. The block keeps the
// best keys found so far, sorted, in shared memory, and a threshold: the keep-th best of them. A
// key that beats the threshold is appended to a pending queue; when the queue may be full, the
// block sorts best + queue together (bitonic, in shared memory) and tightens the threshold. On
// random data few keys beat a threshold that has seen a few thousand keys, so the select costs
// about one compare per key (the idea of FAISS's WarpSelect, with a block-wide sort instead of
// per-thread queues).
#pragma once

#include <cstddef>
#include <cstdint>

#include "compute/cuda/rank_keys.hpp"

namespace hetcache::gpu {

inline constexpr std::size_t kQueueSelectMaxK = 256;
inline constexpr unsigned kQueuePending = 1024;  // at least the block's thread count
inline constexpr unsigned kQueueSlots = 2048;    // a power of two >= kQueueSelectMaxK + pending

struct QueueSelectShared {
  std::uint64_t keys[kQueueSlots];  // [0, best) the best so far, sorted; then the pending queue
  unsigned pending;
  std::uint64_t threshold;
};

HC_HOST_DEVICE inline unsigned next_power_of_two(unsigned v) {
  unsigned p = 1;
  while (p < v) p <<= 1;
  return p;
}

// Sorts keys[0, n) ascending, n a power of two. Each compare-exchange pair belongs to the thread
// owning its lower index, so no two threads touch one key between syncs.
template <typename Block>
HC_HOST_DEVICE void bitonic_sort(Block& block, std::uint64_t* keys, unsigned n) {
  for (unsigned size = 2; size <= n; size <<= 1) {
    for (unsigned stride = size >> 1; stride > 0; stride >>= 1) {
      for (unsigned i = block.thread(); i < n; i += block.threads()) {
        const unsigned partner = i ^ stride;
        if (partner <= i) continue;
        const bool ascending = (i & size) == 0;
        const std::uint64_t a = keys[i], b = keys[partner];
        if ((a > b) == ascending) {
          keys[i] = b;
          keys[partner] = a;
        }
      }
      block.sync();
    }
  }
}

// The `keep` smallest of n keys key_of(i) (distinct, except kNoKey padding), sorted ascending, at
// out[0 .. keep); out[.. pad_to) past the real keys holds kNoKey. Needs keep <= kQueueSelectMaxK
// and block.threads() <= kQueuePending. Same contract as select_smallest, plus the sorted output.
template <typename Block, typename KeyOf>
HC_HOST_DEVICE void queue_select_smallest(Block& block, QueueSelectShared& sh, const KeyOf& key_of,
                                          std::size_t n, std::size_t keep, std::size_t pad_to,
                                          std::uint64_t* out) {
  const unsigned t = block.thread(), step = block.threads();
  const unsigned best = next_power_of_two(keep > 0 ? static_cast<unsigned>(keep) : 1u);
  for (unsigned i = t; i < best; i += step) sh.keys[i] = kNoKey;
  if (t == 0) {
    sh.pending = 0;
    sh.threshold = kNoKey;
  }
  block.sync();
  if (keep > 0) {
    // Every thread runs the same rounds and decides when to merge from the round count alone (a
    // round adds at most `step` keys), so all threads reach the same syncs.
    unsigned rounds_since_merge = 0;
    for (std::size_t base = 0; base < n; base += step) {
      const std::size_t i = base + t;
      if (i < n) {
        const std::uint64_t key = key_of(i);
        if (key < sh.threshold) {
          const unsigned at = block.atomic_add(sh.pending, 1u);
          sh.keys[best + at] = key;
        }
      }
      block.sync();
      ++rounds_since_merge;
      const bool last = base + step >= n;
      if (!last && (rounds_since_merge + 1) * step <= kQueuePending) continue;
      rounds_since_merge = 0;
      const unsigned queued = sh.pending;
      block.sync();  // everyone has read the count before it changes
      if (queued == 0) continue;
      const unsigned sort_n = next_power_of_two(best + queued);
      for (unsigned j = best + queued + t; j < sort_n; j += step) sh.keys[j] = kNoKey;
      block.sync();
      bitonic_sort(block, sh.keys, sort_n);
      if (t == 0) {
        sh.pending = 0;
        sh.threshold = sh.keys[keep - 1];
      }
      block.sync();
    }
  }
  for (std::size_t i = t; i < pad_to; i += step) out[i] = i < keep ? sh.keys[i] : kNoKey;
  block.sync();
}

// The select the kernels run: the queue select up to kQueueSelectMaxK (one read of the keys), the
// radix select above (any k). Output as select_smallest's, sorted when keep <= kQueueSelectMaxK.
struct BestKeysShared {
  SelectShared radix;
  QueueSelectShared queue;
};

template <typename Block, typename KeyOf>
HC_HOST_DEVICE void select_best(Block& block, BestKeysShared& sh, const KeyOf& key_of,
                                std::size_t n, std::size_t keep, std::size_t pad_to,
                                std::uint64_t* out) {
  if (keep <= kQueueSelectMaxK) {
    queue_select_smallest(block, sh.queue, key_of, n, keep, pad_to, out);
  } else {
    select_smallest(block, sh.radix, key_of, n, keep, pad_to, out);
  }
}

}  // namespace hetcache::gpu
