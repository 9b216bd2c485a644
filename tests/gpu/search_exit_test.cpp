// How a GPU search leaves the device (src/compute/cuda/search_exit.hpp), run on the host with the
// CUDA calls stood in by recorders: both streams are waited for before any result or error leaves,
// running out of memory falls back, a lost device falls back, and any other error reaches the
// caller.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "compute/cuda/search_exit.hpp"

namespace hetcache::gpu {
namespace {

struct Recorder {
  std::vector<std::string> events;
  std::optional<std::string> lost_reason;  // what lost() answers
};

template <typename Search>
std::optional<int> run(Recorder& r, SearchExit& exit, Search&& search) {
  return settled_search<int>(
      [&] {
        r.events.push_back("search");
        return search();
      },
      [&]() noexcept { r.events.push_back("settle"); },
      [&]() noexcept {
        r.events.push_back("lost?");
        return r.lost_reason;
      },
      exit);
}

TEST(SearchExit, AnAnswerLeavesAfterTheStreamsSettle) {
  Recorder r;
  SearchExit exit;
  EXPECT_EQ(run(r, exit, [] { return 7; }), 7);
  EXPECT_EQ(r.events, (std::vector<std::string>{"search", "settle"}));
  EXPECT_FALSE(exit.out_of_memory);
  EXPECT_FALSE(exit.device_lost);
}

TEST(SearchExit, OutOfMemoryWaitsForBothStreamsThenFallsBack) {
  Recorder r;
  SearchExit exit;
  EXPECT_EQ(run(r, exit, []() -> int { throw GpuOutOfMemory("cudaMalloc"); }), std::nullopt);
  EXPECT_EQ(r.events, (std::vector<std::string>{"search", "settle"}));
  EXPECT_TRUE(exit.out_of_memory);
}

TEST(SearchExit, AnyOtherErrorWaitsForBothStreamsBeforeItReachesTheCaller) {
  // A cuBLAS status on one stream while the other's tile still runs: the next search must not get
  // the scratch or pinned buffer that tile still uses, so the settle comes before the rethrow.
  Recorder r;
  SearchExit exit;
  try {
    run(r, exit, []() -> int {
      throw Error(ErrorCode::GpuError, "cublasGemmEx failed: CUBLAS_STATUS_EXECUTION_FAILED");
    });
    FAIL() << "the error was swallowed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::GpuError);
    EXPECT_NE(std::string(e.what()).find("cublasGemmEx"), std::string::npos);
    EXPECT_EQ(r.events, (std::vector<std::string>{"search", "settle", "lost?"}));
  }
  EXPECT_FALSE(exit.out_of_memory);
  EXPECT_FALSE(exit.device_lost);
  // Not only hetcache errors: whatever the search throws is settled and rethrown as it was.
  Recorder other;
  EXPECT_THROW(run(other, exit, []() -> int { throw std::runtime_error("host"); }),
               std::runtime_error);
  EXPECT_EQ(other.events, (std::vector<std::string>{"search", "settle", "lost?"}));
}

TEST(SearchExit, ALostDeviceFallsBackWithItsReasonInsteadOfThrowingForever) {
  Recorder r;
  r.lost_reason = "cudaErrorIllegalAddress";
  SearchExit exit;
  EXPECT_EQ(run(r, exit,
                []() -> int {
                  throw Error(ErrorCode::GpuError,
                              "cudaStreamSynchronize failed: cudaErrorIllegalAddress");
                }),
            std::nullopt);
  EXPECT_EQ(r.events, (std::vector<std::string>{"search", "settle", "lost?"}));
  ASSERT_TRUE(exit.device_lost);
  EXPECT_EQ(*exit.device_lost, "cudaErrorIllegalAddress");
}

}  // namespace
}  // namespace hetcache::gpu
