// Private: whether the calling thread is a fiber thread of some Resources (one that runs a
// Boost.Fiber scheduler of ours), so waits there must suspend the fiber rather than block the
// thread.
#pragma once

namespace hetcache::runtime_detail {

bool on_fiber_thread() noexcept;

}  // namespace hetcache::runtime_detail
