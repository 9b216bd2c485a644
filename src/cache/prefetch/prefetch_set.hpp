// Private: the prefetch set -- up to `capacity` hot keys kept resident beside the memory store,
// chosen by frequency (see prefetcher.hpp).
//
// The memory store evicts with CLOCK, which lets a burst of one-off keys push out keys that are
// asked for all the time. This set holds keys by how often they are asked for instead: a newcomer
// takes a slot only from a resident that the frequency sketch rates lower (sampled, as Ristretto
// and Caffeine's TinyLFU do: the coldest of kSample slots is the victim). Its rows are allocated
// once, capacity x dim floats, on top of the memory store's max_bytes.
//
// One shared_mutex: lookups share it; admissions, overwrites and removals take it briefly (one row
// copy each, never across I/O).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cache/expiry.hpp"
#include "cache/prefetch/frequency_sketch.hpp"

namespace hetcache::cache {

class PrefetchSet {
 public:
  static constexpr std::size_t kSample = 8;

  PrefetchSet(std::size_t dim, std::size_t capacity);

  using Lookup = cache::Lookup;
  // Looks up keys[rows[j]] for every j, copying hits to out + rows[j] * stride.
  void lookup(std::span<const std::string_view> keys, std::span<const std::size_t> rows, float* out,
              std::size_t stride, std::int64_t now_ms, Lookup* results) const;

  // Offers a freshly loaded value. A resident key is overwritten. Otherwise the key takes a free
  // slot, or the slot of the coldest of kSample residents (an expired one first) when force is set
  // or its estimate beats the victim's. Returns whether the key is now resident.
  bool admit(std::string_view key, std::uint64_t key_hash, const float* row, std::int64_t expiry_ms,
             std::int64_t now_ms, const FrequencySketch& sketch, bool force);
  // The estimate a newcomer had to beat at the last full-set admission (0 while there is room).
  unsigned admission_floor() const noexcept;

  // Writes keep resident keys current: overwrite those present, drop removed ones.
  void overwrite_present(std::span<const std::string_view> keys, const float* rows,
                         std::size_t stride, std::int64_t expiry_ms);
  bool erase(std::string_view key);
  void clear();
  std::size_t cleanup_expired(std::int64_t now_ms);

  std::size_t size() const;
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t bytes() const noexcept { return capacity_ * dim_ * sizeof(float); }

 private:
  struct Slot {
    std::string key;  // empty: free
    std::uint64_t hash = 0;
    std::int64_t expiry_ms = 0;
  };
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const noexcept;
  };
  void release(std::uint32_t slot);  // under the exclusive lock

  std::size_t dim_;
  std::size_t capacity_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::uint32_t, KeyHash, std::equal_to<>> index_;
  std::vector<Slot> slots_;
  std::unique_ptr<float[]> rows_;
  std::vector<std::uint32_t> free_;
  std::size_t hand_ = 0;  // where the next victim sample starts
  unsigned floor_ = 0;
};

}  // namespace hetcache::cache
