// Private: happens-before edges that ThreadSanitizer cannot see on its own, declared by hand.
// Needed where work crosses threads through an uninstrumented library (oneTBB's task queue): the
// library's own atomics order the hand-off, but TSan only sees the accesses on both sides. No-ops
// in every other build.
#pragma once

#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace hetcache::runtime_detail {

// The thread handing `object` over calls tsan_release, the one receiving it tsan_acquire.
inline void tsan_release([[maybe_unused]] void* object) noexcept {
#if defined(__SANITIZE_THREAD__)
  __tsan_release(object);
#endif
}
inline void tsan_acquire([[maybe_unused]] void* object) noexcept {
#if defined(__SANITIZE_THREAD__)
  __tsan_acquire(object);
#endif
}

}  // namespace hetcache::runtime_detail
