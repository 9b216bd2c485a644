// Private: AddressSanitizer and fiber stacks. ASan does not know the stacks Boost.Fiber switches to
// (Debian's Boost is built without its ASan hooks), so frames unwound by an exception on a fiber
// keep their redzones poisoned, and ASan's own handling of the next throw on that fiber trips over
// them (a false stack-buffer-overflow in __asan_handle_no_return; google/sanitizers#189). Code that
// catches on a fiber and throws again calls clear_unwound_frames() first. Without ASan it is
// nothing.
#pragma once

#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace hetcache::runtime_detail {

// Unpoisons the 8 KiB below the calling frame: the frames the exception just unwound. A fiber's
// stack is 16 KiB or more and a catch sits near its top, so this stays within the stack.
inline void clear_unwound_frames() noexcept {
#if defined(__SANITIZE_ADDRESS__)
  constexpr std::uintptr_t kBelow = 8192;
  const auto frame = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  ASAN_UNPOISON_MEMORY_REGION(reinterpret_cast<void*>(frame - kBelow), kBelow);
#endif
}

}  // namespace hetcache::runtime_detail
