// Private: tells AddressSanitizer which stack a fiber thread is running on. ASan knows only each
// thread's own stack, and Debian's Boost switches fiber stacks without ASan's hooks. At every throw
// ASan clears the redzones of the frames about to be unwound (__asan_handle_no_return), but only
// within the stack it knows; on a fiber it refuses ("ASan is ignoring requested
// __asan_handle_no_return"), the unwound frames stay poisoned, and the next frames there (a
// destructor run by the unwinding, the next call after the catch) report a false
// stack-buffer-overflow (google/sanitizers#189). So every fiber announces its stack when it
// starts, and the scheduling algorithm announces the stack of each fiber it resumes. Without ASan
// all of this compiles to nothing.
#pragma once

#include <cstddef>

namespace hetcache::runtime_detail {

#if defined(__SANITIZE_ADDRESS__)

// Registers the calling fiber's stack (the frames below `top`, which is an address in the fiber's
// outermost frame, within `stack_bytes`) until destroyed, and makes it the thread's current stack.
class FiberStackScope {
 public:
  FiberStackScope(const void* top, std::size_t stack_bytes) noexcept;
  ~FiberStackScope();
  FiberStackScope(const FiberStackScope&) = delete;
  FiberStackScope& operator=(const FiberStackScope&) = delete;

 private:
  const void* context_;
};

// Called by the scheduling algorithm just before it switches to `context` (a
// boost::fibers::context*, or nullptr for the thread's dispatcher): the registered stack of that
// fiber, else the thread's own stack, becomes the thread's current stack.
void entering_context(const void* context) noexcept;

#else

class FiberStackScope {
 public:
  FiberStackScope(const void*, std::size_t) noexcept {}
};
inline void entering_context(const void*) noexcept {}

#endif

}  // namespace hetcache::runtime_detail
