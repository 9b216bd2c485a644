// A Follower cache (RocksDbOptions::mode) keeping up with its writer: catch-ups before reads and
// on demand, and the memory store emptied when they bring new writes.
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>

#include <string>

#include "cache/cache_impl.hpp"

namespace hetcache {

// New writes empty the memory store and the prefetch set, with every stripe held: a read-through
// that loaded a value before the catch-up sees its stripe written and does not cache it.
bool EmbeddingCache::Impl::catch_up(bool due_only) {
  if (!durable_call([&] { return durable->catch_up(due_only); })) return false;
  cache::Stripes::Locks locks(stripes, ~std::uint64_t{0});
  memory.clear();
  if (prefetch) prefetch->set().clear();
  return true;
}

// A failed catch-up is logged and the reads see what the last one applied; the next read tries
// again.
void EmbeddingCache::Impl::follow_now() {
  try {
    catch_up(true);
  } catch (const Error& e) {
    log(std::string(e.what()) + "; reading what the last catch-up applied");
  }
}

bool EmbeddingCache::catch_up() { return impl_->follower && impl_->catch_up(false); }

}  // namespace hetcache
