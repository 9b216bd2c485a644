// The redis= argument of hetcache.EmbeddingCache: "host:port" or
// "redis://[[user]:password@]host[:port][/db]", as redis-py's from_url spells it.
#pragma once

#include <hetcache/cache.hpp>

#include <string_view>

namespace hetcache::python {

// Throws Error(InvalidArgument) naming the malformed part.
RedisOptions parse_redis_url(std::string_view url);

}  // namespace hetcache::python
