#include "cache/prefetch/prefetch_set.hpp"

#include <cstring>
#include <functional>
#include <mutex>

#include "cache/expiry.hpp"

namespace hetcache::cache {

std::size_t PrefetchSet::KeyHash::operator()(std::string_view key) const noexcept {
  return std::hash<std::string_view>{}(key);
}

PrefetchSet::PrefetchSet(std::size_t dim, std::size_t capacity)
    : dim_(dim), capacity_(capacity), slots_(capacity), rows_(new float[capacity * dim]) {
  index_.reserve(capacity);
  free_.reserve(capacity);
  for (std::size_t i = capacity; i-- > 0;) free_.push_back(static_cast<std::uint32_t>(i));
}

void PrefetchSet::lookup(std::span<const std::string_view> keys, std::span<const std::size_t> rows,
                         float* out, std::size_t stride, std::int64_t now_ms,
                         Lookup* results) const {
  std::shared_lock lock(mutex_);
  for (std::size_t j = 0; j < rows.size(); ++j) {
    const auto it = index_.find(keys[rows[j]]);
    if (it == index_.end()) {
      results[j] = Lookup::Miss;
    } else if (is_expired(slots_[it->second].expiry_ms, now_ms)) {
      results[j] = Lookup::Expired;
    } else {
      std::memcpy(out + rows[j] * stride, rows_.get() + std::size_t{it->second} * dim_,
                  dim_ * sizeof(float));
      results[j] = Lookup::Hit;
    }
  }
}

bool PrefetchSet::admit(std::string_view key, std::uint64_t key_hash, const float* row,
                        std::int64_t expiry_ms, std::int64_t now_ms, const FrequencySketch& sketch,
                        bool force) {
  std::unique_lock lock(mutex_);
  std::uint32_t slot;
  if (const auto it = index_.find(key); it != index_.end()) {
    slot = it->second;
  } else {
    if (free_.empty()) {
      // The coldest of kSample residents, an expired one at once.
      std::uint32_t victim = 0;
      unsigned victim_estimate = FrequencySketch::kMaxCount + 1;
      for (std::size_t s = 0; s < kSample && s < capacity_; ++s) {
        const auto candidate = static_cast<std::uint32_t>((hand_ + s) % capacity_);
        const unsigned estimate = is_expired(slots_[candidate].expiry_ms, now_ms)
                                      ? 0
                                      : sketch.estimate(slots_[candidate].hash);
        if (estimate < victim_estimate) {
          victim = candidate;
          victim_estimate = estimate;
        }
        if (estimate == 0) break;
      }
      hand_ = (hand_ + kSample) % capacity_;
      floor_ = victim_estimate;
      if (!force && sketch.estimate(key_hash) <= victim_estimate) return false;
      release(victim);
    }
    slot = free_.back();
    free_.pop_back();
    slots_[slot].key.assign(key);
    slots_[slot].hash = key_hash;
    index_.emplace(slots_[slot].key, slot);
  }
  slots_[slot].expiry_ms = expiry_ms;
  std::memcpy(rows_.get() + std::size_t{slot} * dim_, row, dim_ * sizeof(float));
  return true;
}

unsigned PrefetchSet::admission_floor() const noexcept {
  std::shared_lock lock(mutex_);
  return free_.empty() ? floor_ : 0;
}

void PrefetchSet::overwrite_present(std::span<const std::string_view> keys, const float* rows,
                                    std::size_t stride, std::int64_t expiry_ms) {
  std::unique_lock lock(mutex_);
  if (index_.empty()) return;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto it = index_.find(keys[i]);
    if (it == index_.end()) continue;
    slots_[it->second].expiry_ms = expiry_ms;
    std::memcpy(rows_.get() + std::size_t{it->second} * dim_, rows + i * stride,
                dim_ * sizeof(float));
  }
}

void PrefetchSet::release(std::uint32_t slot) {
  index_.erase(slots_[slot].key);
  slots_[slot] = Slot{};
  free_.push_back(slot);
}

bool PrefetchSet::erase(std::string_view key) {
  std::unique_lock lock(mutex_);
  const auto it = index_.find(key);
  if (it == index_.end()) return false;
  release(it->second);
  return true;
}

void PrefetchSet::clear() {
  std::unique_lock lock(mutex_);
  for (std::uint32_t slot = 0; slot < capacity_; ++slot) {
    if (!slots_[slot].key.empty()) release(slot);
  }
}

std::size_t PrefetchSet::cleanup_expired(std::int64_t now_ms) {
  std::unique_lock lock(mutex_);
  std::size_t removed = 0;
  for (std::uint32_t slot = 0; slot < capacity_; ++slot) {
    if (!slots_[slot].key.empty() && is_expired(slots_[slot].expiry_ms, now_ms)) {
      release(slot);
      ++removed;
    }
  }
  return removed;
}

std::size_t PrefetchSet::size() const {
  std::shared_lock lock(mutex_);
  return index_.size();
}

}  // namespace hetcache::cache
