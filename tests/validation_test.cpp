// Bad input gives hetcache::Error with the right code and a message naming the bad value.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "support/resources.hpp"

namespace hetcache {
namespace {

template <class Fn>
void expect_error(Fn&& fn, ErrorCode code, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message '" << e.what() << "' does not mention '" << needle << "'";
  }
}

TEST(Validation, ViewShapes) {
  std::vector<float> data(64, 1.0f);
  expect_error([&] { MatrixView(data.data(), 4, 8, 5); }, ErrorCode::InvalidArgument, "stride 5");
  expect_error([&] { MatrixView(nullptr, 3, 8); }, ErrorCode::InvalidArgument, "rows = 3");
  expect_error([&] { MatrixView(data.data(), std::numeric_limits<std::size_t>::max() / 2, 8); },
               ErrorCode::InvalidArgument, "overflows");
  expect_error([&] { MutableMatrixView(data.data(), 2, 8, 7); }, ErrorCode::InvalidArgument,
               "stride 7");
  expect_error([&] { MatrixView(data.data(), 8, 8).slice(6, 3); }, ErrorCode::InvalidArgument,
               "outside");
  EXPECT_NO_THROW(MatrixView(nullptr, 0, 8));
  EXPECT_EQ(MatrixView(data.data(), 4, 8).stride(), 8u);  // 0 means packed
}

TEST(Validation, EngineInputs) {
  // GPU disabled: the Gpu tier asked of an engine without one is the error checked below.
  SimilarityEngine engine(SimilarityOptions{.resources = test::cpu_only_resources()});
  std::vector<float> a(8 * 10, 0.5f), b(6 * 10, 0.25f);
  const MatrixView q(a.data(), 10, 8), c6(b.data(), 10, 6);
  expect_error([&] { engine.search(q, c6, 3); }, ErrorCode::DimensionMismatch, "dim 8");
  expect_error([&] { engine.scores(q, c6); }, ErrorCode::DimensionMismatch, "dim 6");
  std::vector<float> five(5, 1.0f);
  expect_error([&] { engine.batch_similarity_search(five, MatrixView(a.data(), 10, 8)); },
               ErrorCode::DimensionMismatch, "5 values");
  expect_error([&] { engine.search(q, MatrixView(a.data(), 10, 8), 3, Metric::Dot, Tier::Gpu); },
               ErrorCode::Unsupported, "gpu");
  expect_error([&] { engine.search(q, MatrixView(a.data(), 10, 8), 3, Metric::Dot, Tier::Fiber); },
               ErrorCode::Unsupported, "fiber");
}

TEST(Validation, ResultSizesThatOverflow) {
  SimilarityEngine engine;
  // Views over one row repeated (stride 0 is "packed", so use a huge row count on a tiny buffer
  // is impossible); instead a view of huge rows with stride == dim == 1 over a real buffer is
  // only safe if never read: the size check must fire before any kernel runs.
  std::vector<float> one(1, 1.0f);
  const std::size_t huge = std::numeric_limits<std::size_t>::max() / 8;
  const MatrixView q(one.data(), huge, 1), c(one.data(), huge, 1);
  expect_error([&] { engine.scores(q, c); }, ErrorCode::InvalidArgument, "overflow");
  expect_error([&] { engine.search(q, c, huge); }, ErrorCode::InvalidArgument, "overflow");
}

TEST(Validation, ParsersNameTheBadValue) {
  expect_error([] { parse_metric("manhattan"); }, ErrorCode::InvalidArgument, "manhattan");
  expect_error([] { parse_isa("sse9"); }, ErrorCode::InvalidArgument, "sse9");
  EXPECT_EQ(parse_metric("COSINE"), Metric::Cosine);
  EXPECT_EQ(parse_isa("AVX2"), Isa::Avx2);
}

TEST(Validation, ForcingAnIsaTheCpuLacksIsAClearError) {
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    if (isa_supported(isa)) {
      EXPECT_NO_THROW(SimilarityEngine(SimilarityOptions{isa}));
    } else {
      expect_error([&] { SimilarityEngine(SimilarityOptions{isa}); }, ErrorCode::Unsupported,
                   std::string(to_string(isa)));
    }
  }
  EXPECT_TRUE(isa_supported(Isa::Scalar));
}

TEST(Matrix, RowsAreAlignedAndZeroed) {
  Matrix m(7, 33);
  EXPECT_EQ(m.stride(), 48u);
  for (std::size_t r = 0; r < 7; ++r) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m.row(r)) % Matrix::kRowAlignmentBytes, 0u);
    for (std::size_t c = 0; c < m.stride(); ++c) EXPECT_EQ(m.row(r)[c], 0.0f);
  }
  std::vector<float> src(3 * 5);
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i) + 0.5f;
  const Matrix copy = Matrix::copy_of(MatrixView(src.data(), 3, 4, 5));
  EXPECT_EQ(copy(2, 3), src[2 * 5 + 3]);
  const Matrix twin = copy.clone();
  EXPECT_EQ(twin(1, 2), copy(1, 2));
  expect_error([] { Matrix(std::numeric_limits<std::size_t>::max() / 4, 64); },
               ErrorCode::InvalidArgument, "overflows");
}

// The kB of transparent huge pages backing the mapping that holds `address` (/proc/self/smaps).
std::size_t huge_page_kb_at(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  const auto a = reinterpret_cast<std::uintptr_t>(address);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    std::uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2 &&
        line.find(':') > line.find('-')) {
      inside = a >= lo && a < hi;
    } else if (inside && line.rfind("AnonHugePages:", 0) == 0) {
      return std::stoul(line.substr(14));
    }
  }
  return 0;
}

// A large matrix (a slab of the cache, a candidate set) starts on a 2 MiB boundary and, where the
// kernel's THP mode allows it, the zero-fill faults it in as huge pages; a small one stays on an
// ordinary 64-byte aligned allocation.
TEST(Matrix, LargeMatricesAreBackedByHugePages) {
  Matrix large(16384, 1024);  // 64 MiB
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(large.data()) % (std::size_t{2} << 20), 0u);
  EXPECT_EQ(large(16383, 1023), 0.0f);
  Matrix odd(1000, 768);  // 3 MiB: 4 MiB of huge pages would waste a third; small pages
  EXPECT_EQ(odd(999, 767), 0.0f);
  std::ifstream mode_file("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(mode_file, mode);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizer allocators place large blocks themselves";
#endif
  if (mode.find("[never]") != std::string::npos || mode.empty()) {
    GTEST_SKIP() << "transparent huge pages are off on this kernel ('" << mode << "')";
  }
  EXPECT_GE(huge_page_kb_at(large.data() + (std::size_t{32} << 20) / sizeof(float)), 2048u)
      << "THP mode '" << mode << "'";
}

}  // namespace
}  // namespace hetcache
