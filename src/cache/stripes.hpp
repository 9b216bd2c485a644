// Private: the cache's stripes -- 64 locks over the key space that keep the memory and durable
// stores in agreement. Writers of a key hold its stripe exclusively across both stores. A
// read-through holds no lock across its durable read: it checks the stripe's seqlock count (odd
// while a writer holds the stripe) and only tries the lock to cache what it read, so a concurrent
// put or remove cannot be undone by a stale value (cache_if_unwritten). Memory hits take no stripe.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string_view>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace hetcache::cache {

class Stripes {
 public:
  static constexpr std::size_t kCount = 64;

  static std::size_t of(std::string_view key) {
    return XXH3_64bits(key.data(), key.size()) % kCount;
  }
  template <typename Keys>
  static std::uint64_t mask(const Keys& keys) {
    std::uint64_t m = 0;
    for (const auto& key : keys) m |= std::uint64_t{1} << of(key);
    return m;
  }

  // A writer's hold on the stripes of a mask, taken in ascending order (no deadlock between
  // batches); each stripe's seqlock count is odd while it is held.
  class Locks {
   public:
    Locks(Stripes& stripes, std::uint64_t mask) : stripes_(stripes), mask_(mask) {
      for (std::size_t i = 0; i < kCount; ++i) {
        if ((mask_ >> i) & 1) {
          stripes_.locks_[i].lock();
          stripes_.versions_[i].fetch_add(1, std::memory_order_acq_rel);  // now odd
        }
      }
    }
    ~Locks() {
      for (std::size_t i = kCount; i-- > 0;) {
        if ((mask_ >> i) & 1) {
          stripes_.versions_[i].fetch_add(1, std::memory_order_acq_rel);  // even again
          stripes_.locks_[i].unlock();
        }
      }
    }
    Locks(const Locks&) = delete;
    Locks& operator=(const Locks&) = delete;

   private:
    Stripes& stripes_;
    std::uint64_t mask_;
  };

  // A read-through must not cache a value that a concurrent write has replaced, and must not hold
  // a lock while it waits for the durable store (inside a fiber the wait suspends, the fiber may
  // resume on another thread, and a std::shared_mutex must be unlocked by its owner). So it
  // snapshots each key's stripe seqlock count before the read and caches a value only if no writer
  // held the stripe then (even count) nor took it since; the stripe lock is only tried, never
  // waited for. Sync reads, async reads and prefetch loads all use this.
  template <typename Keys>
  std::vector<std::uint64_t> snapshot(const Keys& keys) const {
    std::vector<std::uint64_t> versions;
    versions.reserve(keys.size());
    for (const auto& key : keys)
      versions.push_back(versions_[of(key)].load(std::memory_order_acquire));
    return versions;
  }
  // Calls store() when caching key's freshly read value is safe (see snapshot); returns whether it
  // did.
  template <typename Store>
  bool cache_if_unwritten(std::string_view key, std::uint64_t version, Store&& store) {
    if (version % 2 != 0) return false;
    const std::size_t stripe = of(key);
    std::shared_lock lock(locks_[stripe], std::try_to_lock);
    if (!lock.owns_lock() || versions_[stripe].load(std::memory_order_acquire) != version)
      return false;
    store();
    return true;
  }

 private:
  std::array<std::shared_mutex, kCount> locks_;
  std::array<std::atomic<std::uint64_t>, kCount> versions_{};
};

}  // namespace hetcache::cache
