// AddressSanitizer's view of fiber stacks (see asan_fiber.hpp). Empty unless built with
// AddressSanitizer.
#include "runtime/asan_fiber.hpp"

#if defined(__SANITIZE_ADDRESS__)

#include <boost/fiber/context.hpp>
#include <sanitizer/common_interface_defs.h>

#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace hetcache::runtime_detail {
namespace {

struct StackBounds {
  const void* bottom = nullptr;
  std::size_t size = 0;
};

std::mutex registry_mutex;
std::unordered_map<const void*, StackBounds>& registry() {
  static auto* stacks = new std::unordered_map<const void*, StackBounds>();  // never destroyed:
  return *stacks;  // fiber threads may still switch while statics are torn down
}

// The thread's own stack, learned the first time this thread changes what ASan considers current.
thread_local StackBounds own_stack;
thread_local bool own_stack_known = false;

// ASan's fiber-switch interface, used back to back: it sets the thread's current stack without a
// switch; the fake stack (detect_stack_use_after_return) is handed back unchanged.
void make_current(StackBounds stack) noexcept {
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, stack.bottom, stack.size);
  const void* old_bottom = nullptr;
  std::size_t old_size = 0;
  __sanitizer_finish_switch_fiber(fake_stack, &old_bottom, &old_size);
  if (!own_stack_known) {
    own_stack = {old_bottom, old_size};
    own_stack_known = true;
  }
}

}  // namespace

FiberStackScope::FiberStackScope(const void* top, std::size_t stack_bytes) noexcept
    : context_(boost::fibers::context::active()) {
  // The fiber's control block and its first frames sit above `top`; a 4 KiB allowance keeps the
  // bottom inside the allocation (ASan uses it only to describe addresses).
  const std::size_t below = stack_bytes > 8192 ? stack_bytes - 4096 : stack_bytes / 2;
  const auto top_address = reinterpret_cast<std::uintptr_t>(top);
  const StackBounds stack{reinterpret_cast<const void*>(top_address - below), below};
  {
    std::lock_guard lock(registry_mutex);
    registry()[context_] = stack;
  }
  make_current(stack);
}

FiberStackScope::~FiberStackScope() {
  std::lock_guard lock(registry_mutex);
  registry().erase(context_);
}

void entering_context(const void* context) noexcept {
  StackBounds stack;
  bool found = false;
  if (context != nullptr) {
    std::lock_guard lock(registry_mutex);
    const auto it = registry().find(context);
    if (it != registry().end()) {
      stack = it->second;
      found = true;
    }
  }
  if (!found) {
    if (!own_stack_known) return;  // nothing was changed on this thread yet
    stack = own_stack;
  }
  make_current(stack);
}

}  // namespace hetcache::runtime_detail

#endif
