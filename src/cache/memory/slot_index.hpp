// Private to src/cache/memory: a shard's key index (memory_shard.hpp) -- an open-addressing table
// from a key's 64-bit hash to the slot holding it.
//
// An entry is 8 bytes (a 32-bit tag from the hash's high half, and the slot), eight to a 64-byte
// line, and the table is kept at most half full, so a lookup reads one line (rarely two) and then
// compares the key, which lives in the slot, once. Batched reads (memory_store.cpp) prefetch
// line_of(hash) for keys ahead of the one they resolve, which a node-based map cannot offer: its
// bucket, node and row are three dependent misses per key. Linear probing with backward-shift
// deletion: no tombstones, so lookups do not slow down as entries come and go. Not synchronised:
// the shard's lock guards it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <utility>

namespace hetcache::cache {

class SlotIndex {
 public:
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

  std::size_t size() const noexcept { return size_; }
  std::size_t bytes() const noexcept { return capacity() * sizeof(Entry); }

  // The line a lookup of `hash` reads first, to prefetch; null while the table has no storage.
  const void* line_of(std::uint64_t hash) const noexcept {
    return lines_ ? entry(hash & mask_) : nullptr;
  }

  // The first slot whose tag matches `hash`, or kNone: a candidate whose key the caller compares
  // (a different key with the same tag is a 1-in-2^32 event, resolved by find).
  std::uint32_t first_match(std::uint64_t hash) const noexcept {
    return find(hash, [](std::uint32_t) { return true; });
  }

  // The slot whose tag matches `hash` and for which is_key(slot) holds, or kNone.
  template <class IsKey>
  std::uint32_t find(std::uint64_t hash, IsKey&& is_key) const {
    if (size_ == 0) return kNone;
    const std::uint32_t tag = tag_of(hash);
    for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Entry& e = *entry(i);
      if (e.slot == kNone) return kNone;
      if (e.tag == tag && is_key(e.slot)) return e.slot;
    }
  }

  // Makes room for one more entry, so the next insert cannot fail. hash_of(slot) gives the hash of
  // a slot already in the table. Throws std::bad_alloc, leaving the table as it was.
  template <class HashOf>
  void reserve_one(HashOf&& hash_of) {
    if ((size_ + 1) * 2 <= capacity()) return;
    const std::size_t old_capacity = capacity();
    const std::size_t lines = old_capacity == 0 ? 1 : 2 * old_capacity / kPerLine;
    std::unique_ptr<Line[]> grown = std::make_unique<Line[]>(lines);
    std::unique_ptr<Line[]> old = std::exchange(lines_, std::move(grown));
    mask_ = lines * kPerLine - 1;
    for (std::size_t i = 0; i < old_capacity; ++i) {
      const Entry& e = old[i / kPerLine].entries[i % kPerLine];
      if (e.slot != kNone) place(hash_of(e.slot), e.slot);
    }
  }

  // Adds `slot` under `hash`, after reserve_one; the caller knows the key is absent.
  void insert(std::uint64_t hash, std::uint32_t slot) noexcept {
    place(hash, slot);
    ++size_;
  }

  // Removes `slot`, which is in the table under `hash`.
  template <class HashOf>
  void erase(std::uint64_t hash, std::uint32_t slot, HashOf&& hash_of) noexcept {
    std::size_t hole = hash & mask_;
    while (entry(hole)->slot != slot) hole = (hole + 1) & mask_;
    // Backward shift: an entry later in the run moves into the hole when the hole lies between
    // its home and where it sits, so every entry stays reachable from its home without a gap.
    for (std::size_t j = (hole + 1) & mask_;; j = (j + 1) & mask_) {
      const Entry e = *entry(j);
      if (e.slot == kNone) break;
      const std::size_t home = hash_of(e.slot) & mask_;
      if (((j - home) & mask_) >= ((j - hole) & mask_)) {
        *entry(hole) = e;
        hole = j;
      }
    }
    *entry(hole) = Entry{};
    --size_;
  }

  void clear() noexcept {
    lines_.reset();
    mask_ = 0;
    size_ = 0;
  }

 private:
  struct Entry {
    std::uint32_t tag = 0;
    std::uint32_t slot = kNone;
  };
  static constexpr std::size_t kPerLine = 8;
  struct alignas(64) Line {
    Entry entries[kPerLine];
  };

  static std::uint32_t tag_of(std::uint64_t hash) noexcept {
    return static_cast<std::uint32_t>(hash >> 32);
  }
  std::size_t capacity() const noexcept { return lines_ ? mask_ + 1 : 0; }
  Entry* entry(std::size_t i) const noexcept { return &lines_[i / kPerLine].entries[i % kPerLine]; }
  void place(std::uint64_t hash, std::uint32_t slot) noexcept {
    std::size_t i = hash & mask_;
    while (entry(i)->slot != kNone) i = (i + 1) & mask_;
    *entry(i) = Entry{tag_of(hash), slot};
  }

  std::unique_ptr<Line[]> lines_;
  std::size_t mask_ = 0;  // capacity - 1 (a power of two, a multiple of kPerLine)
  std::size_t size_ = 0;
};

}  // namespace hetcache::cache
