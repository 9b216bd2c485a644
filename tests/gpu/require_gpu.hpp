// GPU tests skip without a device -- unless HETCACHE_REQUIRE_GPU=1 (set by scripts/gpu_bench.sh and
// the Docker image), which turns the skip into a failure, so a GPU machine cannot pass vacuously.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace hetcache::test {

inline bool gpu_required() {
  const char* v = std::getenv("HETCACHE_REQUIRE_GPU");
  return v != nullptr && std::string(v) == "1";
}

}  // namespace hetcache::test

// Skips (or, with HETCACHE_REQUIRE_GPU=1, fails) when the engine has no GPU tier.
#define REQUIRE_GPU(engine)                                           \
  do {                                                                \
    if (!(engine).gpu_available()) {                                  \
      if (::hetcache::test::gpu_required())                           \
        FAIL() << "no GPU tier: " << (engine).gpu_stats().reason;     \
      GTEST_SKIP() << "no GPU tier: " << (engine).gpu_stats().reason; \
    }                                                                 \
  } while (0)
