// Every ISA and both CPU tiers against the float64 reference, on fresh random data.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "compute/cpu/isa.hpp"
#include "compute/cpu/kernel_abi.hpp"
#include "reference.hpp"
#include "support/resources.hpp"

namespace hetcache::test {
namespace {

constexpr Isa kAllIsas[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512};
constexpr Metric kAllMetrics[] = {Metric::Dot, Metric::Cosine, Metric::L2};

// One engine per supported ISA; 3 threads on purpose, so the Cpu tier cuts work into an odd
// number of parts whatever the machine.
std::vector<std::unique_ptr<SimilarityEngine>>& engines() {
  static std::vector<std::unique_ptr<SimilarityEngine>> all = [] {
    std::vector<std::unique_ptr<SimilarityEngine>> v;
    for (Isa isa : kAllIsas) {
      if (isa_supported(isa))
        v.push_back(std::make_unique<SimilarityEngine>(
            SimilarityOptions{isa, Precision::F32, resources_with_cpu_threads(3)}));
    }
    return v;
  }();
  return all;
}

struct Case {
  std::size_t nq, n, dim, k;
  Metric metric;
  std::size_t pad = 0;
};

std::string describe(const Case& c) {
  return "Q=" + std::to_string(c.nq) + " N=" + std::to_string(c.n) + " d=" + std::to_string(c.dim) +
         " k=" + std::to_string(c.k) + " metric=" + std::string(to_string(c.metric)) +
         " pad=" + std::to_string(c.pad) + " seed=" + std::to_string(test_seed());
}

// Runs a case on every ISA x tier: each result valid against the reference; the two tiers of one
// ISA bit-identical; ISAs agree on ids except where reference scores tie within tolerance.
void check_case(const Case& c, const TestMatrix& queries, const TestMatrix& candidates) {
  SCOPED_TRACE(describe(c));
  const Reference ref(queries.view(), candidates.view(), c.metric);
  std::vector<Hits> per_isa;
  for (auto& engine : engines()) {
    SCOPED_TRACE(std::string("isa=") + std::string(to_string(engine->isa())));
    const Hits seq =
        engine->search(queries.view(), candidates.view(), c.k, c.metric, Tier::Sequential);
    const Hits par = engine->search(queries.view(), candidates.view(), c.k, c.metric, Tier::Cpu);
    // The same candidates with their norms kept: bit-identical on both tiers.
    const std::vector<float> norms = engine->squared_norms(candidates.view());
    const CandidateView kept(candidates.view(), norms);
    const Hits kept_seq = engine->search(queries.view(), kept, c.k, c.metric, Tier::Sequential);
    const Hits kept_par = engine->search(queries.view(), kept, c.k, c.metric, Tier::Cpu);
    ASSERT_EQ(seq.num_queries(), c.nq);
    for (std::size_t q = 0; q < c.nq; ++q) {
      expect_valid_hits(ref, seq, q, c.n, c.k, c.metric);
      if (::testing::Test::HasFatalFailure()) return;
      for (const Hits* other : {&par, &kept_seq, &kept_par}) {
        const char* what = other == &par ? "tiers differ" : "kept norms differ";
        for (std::size_t i = 0; i < seq.k(); ++i) {
          ASSERT_EQ(seq.ids(q)[i], other->ids(q)[i]) << what << ": query " << q << " hit " << i;
          const float a = seq.scores(q)[i], b = other->scores(q)[i];
          ASSERT_TRUE(a == b || (std::isnan(a) && std::isnan(b)))
              << what << ": query " << q << " hit " << i;
        }
      }
    }
    per_isa.push_back(std::move(seq));
  }
  for (std::size_t e = 1; e < per_isa.size(); ++e) {
    for (std::size_t q = 0; q < c.nq; ++q) {
      for (std::size_t i = 0; i < per_isa[0].k(); ++i) {
        const auto a = per_isa[0].ids(q)[i], b = per_isa[e].ids(q)[i];
        if (a == b) continue;
        const RefScore ra = ref.score(q, a), rb = ref.score(q, b);
        ASSERT_FALSE(ref.clearly_better(ra, rb) || ref.clearly_better(rb, ra))
            << "ISAs disagree beyond a tie: query " << q << " hit " << i << " ids " << a << ", "
            << b;
      }
    }
  }
}

void run_random_case(const Case& c, std::uint64_t salt) {
  std::mt19937_64 rng(test_seed() ^ (salt * 0x9E3779B97F4A7C15ull));
  const TestMatrix queries = random_rows(rng, c.nq, c.dim, c.pad);
  const TestMatrix candidates = random_rows(rng, c.n, c.dim, (c.pad * 3) % 7);
  check_case(c, queries, candidates);
}

TEST(Similarity, EnginesExistForEverySupportedIsa) {
  ASSERT_FALSE(engines().empty());
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa))
      std::printf("[ note ] ISA %s not supported here: not tested\n",
                  std::string(to_string(isa)).c_str());
  }
  EXPECT_EQ(engines().size(), static_cast<std::size_t>(1 + (isa_supported(Isa::Avx2) ? 1 : 0) +
                                                       (isa_supported(Isa::Avx512) ? 1 : 0)));
}

TEST(Similarity, AllFiniteFindsANanOrInfinityAtEveryPosition) {
  // The scan a cache put runs over every value: each ISA's, at every position of rows that end
  // inside a vector, on one, and past the unrolled loop; finite extremes pass.
  std::mt19937_64 rng(test_seed());
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const float finite_extremes[] = {std::numeric_limits<float>::max(),
                                   -std::numeric_limits<float>::max(),
                                   std::numeric_limits<float>::denorm_min(), -0.0f};
  const float bad_values[] = {std::nanf(""), -std::nanf(""), INFINITY, -INFINITY};
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa)) continue;
    const cpu::KernelTable& kernels = cpu::kernels_for(isa);
    for (std::size_t n : {1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 70, 127, 129, 768, 1539}) {
      std::vector<float> row(n);
      for (float& x : row) x = uniform(rng);
      for (std::size_t i = 0; i < n && i < 4; ++i) row[(i * 37) % n] = finite_extremes[i];
      ASSERT_TRUE(kernels.all_finite(row.data(), n)) << kernels.name << " n " << n;
      for (std::size_t at = 0; at < n; ++at) {
        const float kept = row[at];
        row[at] = bad_values[at % 4];
        EXPECT_FALSE(kernels.all_finite(row.data(), n))
            << kernels.name << " n " << n << ": " << row[at] << " at " << at;
        row[at] = kept;
      }
    }
  }
}

TEST(Similarity, DimensionSweep) {
  const std::size_t dims[] = {1,   2,   3,   5,   7,   8,   9,    15,   16,   17,   31,  32,  33,
                              63,  64,  65,  100, 127, 128, 129,  255,  256,  257,  383, 384, 385,
                              511, 512, 513, 767, 768, 769, 1023, 1024, 1025, 1100, 4096};
  std::mt19937_64 rng(test_seed());
  std::size_t salt = 0;
  for (std::size_t dim : dims) {
    const std::size_t n = 40 + rng() % 300;
    const Case c{1 + rng() % 9, n, dim, 1 + rng() % (n + 5), kAllMetrics[salt % 3], rng() % 4};
    run_random_case(c, ++salt);
    if (HasFatalFailure()) return;
  }
}

TEST(Similarity, QuerySweep) {
  const std::size_t counts[] = {1, 2, 3, 4, 5, 7, 8, 13, 16, 17, 31, 64, 100, 255, 256, 300};
  std::size_t salt = 100;
  for (std::size_t nq : counts) {
    run_random_case({nq, 700, 37, 10, kAllMetrics[salt % 3], 1}, ++salt);
    if (HasFatalFailure()) return;
  }
}

TEST(Similarity, CandidateSweep) {
  const std::size_t counts[] = {0,   1,    2,    3,    4,    5,     15,    16,    17,
                                100, 2047, 2048, 2049, 8195, 20000, 65537, 200000};
  std::size_t salt = 200;
  for (std::size_t n : counts) {
    for (std::size_t k : {std::size_t{1}, std::size_t{10}, n + 5}) {
      if (n > 20000 && k > 100) continue;  // k = N on 200k is CandidateSweepLargeK's job
      run_random_case({3, n, 24, k, kAllMetrics[salt % 3], 2}, ++salt);
      if (HasFatalFailure()) return;
    }
  }
}

TEST(Similarity, EveryKFromOneToNPlusFive) {
  std::size_t salt = 300;
  for (std::size_t k = 1; k <= 42; ++k) {
    run_random_case({5, 37, 19, k, kAllMetrics[k % 3]}, ++salt);
    if (HasFatalFailure()) return;
  }
}

TEST(Similarity, LargeKAcrossTaskBoundaries) {
  run_random_case({2, 20000, 16, 5000, Metric::Cosine}, 400);
  run_random_case({9, 9000, 12, 9005, Metric::L2}, 401);
}

TEST(Similarity, StridedUnalignedViews) {
  std::size_t salt = 500;
  for (std::size_t pad : {1, 3, 5, 13}) {
    run_random_case({6, 513, 45, 17, kAllMetrics[pad % 3], pad}, ++salt);
    if (HasFatalFailure()) return;
  }
  // A view starting one float past an aligned boundary.
  std::mt19937_64 rng(test_seed() + 7);
  TestMatrix big = random_rows(rng, 301, 66);
  TestMatrix q = random_rows(rng, 5, 65);
  TestMatrix shifted;
  shifted.rows = 300;
  shifted.dim = 65;
  shifted.stride = 66;
  shifted.storage.assign(big.storage.begin() + 1, big.storage.end());
  check_case({5, 300, 65, 20, Metric::Dot}, q, shifted);
}

// NaN rows, zero rows, duplicate rows (exact ties) and a zero query, on every metric.
TEST(Similarity, NanZeroAndTiedVectors) {
  std::mt19937_64 rng(test_seed() + 11);
  for (Metric metric : kAllMetrics) {
    TestMatrix candidates = random_rows(rng, 3000, 40);
    TestMatrix queries = random_rows(rng, 6, 40);
    for (std::size_t r : {5, 17, 2500})
      candidates.row(r)[r % 40] = std::numeric_limits<float>::quiet_NaN();
    for (std::size_t r : {3, 1000}) std::fill(candidates.row(r), candidates.row(r) + 40, 0.0f);
    for (std::size_t r : {700, 701, 2999})
      std::copy(candidates.row(42), candidates.row(42) + 40, candidates.row(r));
    std::fill(queries.row(1), queries.row(1) + 40, 0.0f);                    // zero query: all ties
    queries.row(4)[7] = std::numeric_limits<float>::quiet_NaN();             // NaN query: all NaN
    std::copy(candidates.row(42), candidates.row(42) + 40, queries.row(2));  // exact duplicates
    for (std::size_t k : {1, 4, 50, 3005}) {
      check_case({6, 3000, 40, k, metric}, queries, candidates);
      if (HasFatalFailure()) return;
    }
  }
}

TEST(Similarity, NanAndTieRulesExactly) {
  // 6 candidates, d = 2. Dot with query (1, 0) scores them 1, NaN, 3, 3, 0, NaN.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float cand[] = {1, 0, nan, 0, 3, 0, 3, 5, 0, 0, nan, 1};
  const float query[] = {1, 0};
  const MatrixView c(cand, 6, 2), q(query, 1, 2);
  for (auto& engine : engines()) {
    for (Tier tier : {Tier::Sequential, Tier::Cpu}) {
      const Hits h = engine->search(q, c, 10, Metric::Dot, tier);
      ASSERT_EQ(h.k(), 6u);
      const std::vector<std::int64_t> ids(h.ids(0).begin(), h.ids(0).end());
      EXPECT_EQ(ids, (std::vector<std::int64_t>{2, 3, 0, 4, 1, 5}));
      EXPECT_EQ(h.scores(0)[0], 3.0f);
      EXPECT_EQ(h.scores(0)[3], 0.0f);
      EXPECT_TRUE(std::isnan(h.scores(0)[4]) && std::isnan(h.scores(0)[5]));
      const Hits two = engine->search(q, c, 2, Metric::Dot, tier);
      EXPECT_EQ(two.ids(0)[0], 2);
      EXPECT_EQ(two.ids(0)[1], 3);
      // L2 from (1, 0): distances 0, NaN, 4, 29, 1, NaN -> ids 0, 4, 2, 3, then NaN 1, 5.
      const Hits l2 = engine->search(q, c, 6, Metric::L2, tier);
      EXPECT_EQ(std::vector<std::int64_t>(l2.ids(0).begin(), l2.ids(0).end()),
                (std::vector<std::int64_t>{0, 4, 2, 3, 1, 5}));
      EXPECT_EQ(l2.scores(0)[0], 0.0f);
      EXPECT_EQ(l2.scores(0)[3], 29.0f);
      // Cosine: a zero candidate scores exactly 0.
      const float zero_and_unit[] = {0, 0, 2, 0};
      const Hits cos = engine->search(q, MatrixView(zero_and_unit, 2, 2), 2, Metric::Cosine, tier);
      EXPECT_EQ(cos.ids(0)[0], 1);
      EXPECT_FLOAT_EQ(cos.scores(0)[0], 1.0f);
      EXPECT_EQ(cos.scores(0)[1], 0.0f);
    }
  }
}

// Once a list is full of NaN, -inf (a number) must still get in: the vector filter must let a
// key equal to its -inf threshold through. Four queries and 4-wide tiles reach the vector path.
TEST(Similarity, NegativeInfinityBeatsNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> cand;
  for (int i = 0; i < 8; ++i) {
    cand.push_back(i < 4 ? nan : -inf);
    cand.push_back(0.0f);
  }
  const float queries[] = {1, 0, 1, 0, 1, 0, 1, 0};
  for (auto& engine : engines()) {
    for (Tier tier : {Tier::Sequential, Tier::Cpu}) {
      const Hits h = engine->search(MatrixView(queries, 4, 2), MatrixView(cand.data(), 8, 2), 2,
                                    Metric::Dot, tier);
      for (std::size_t q = 0; q < 4; ++q) {
        EXPECT_EQ(h.ids(q)[0], 4) << to_string(engine->isa());
        EXPECT_EQ(h.ids(q)[1], 5) << to_string(engine->isa());
        EXPECT_EQ(h.scores(q)[0], -inf);
      }
    }
  }
}

// The same with a top-k buffer that fills (k + 64 entries): 100 NaN scores come first, so the
// selection's k-th entry is NaN and the kernels' filter must then let -inf through (threshold
// -inf, compared with >=) -- with 8 candidates the filter never runs.
TEST(Similarity, NegativeInfinityBeatsNaNInAFullTopKBuffer) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  constexpr std::size_t kN = 300;
  std::vector<float> cand;
  for (std::size_t i = 0; i < kN; ++i) {
    cand.push_back(i == 150 || i == 151 ? -inf : nan);
    cand.push_back(0.0f);
  }
  // 7 queries: whole tiles of 4 (AVX-512) and 2 (AVX2) queries, and a remainder.
  const float queries[] = {1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0};
  for (auto& engine : engines()) {
    for (Tier tier : {Tier::Sequential, Tier::Cpu}) {
      const Hits h = engine->search(MatrixView(queries, 7, 2), MatrixView(cand.data(), kN, 2), 2,
                                    Metric::Dot, tier);
      for (std::size_t q = 0; q < 7; ++q) {
        EXPECT_EQ(h.ids(q)[0], 150) << to_string(engine->isa());
        EXPECT_EQ(h.ids(q)[1], 151) << to_string(engine->isa());
        EXPECT_EQ(h.scores(q)[1], -inf) << to_string(engine->isa());
      }
    }
  }
}

TEST(Similarity, EmptyResults) {
  std::mt19937_64 rng(test_seed() + 13);
  const TestMatrix q = random_rows(rng, 4, 8), c = random_rows(rng, 10, 8);
  for (auto& engine : engines()) {
    const Hits k0 = engine->search(q.view(), c.view(), 0);
    EXPECT_EQ(k0.num_queries(), 4u);
    EXPECT_EQ(k0.k(), 0u);
    const Hits n0 = engine->search(q.view(), MatrixView(nullptr, 0, 8), 5);
    EXPECT_EQ(n0.k(), 0u);
    const Hits q0 = engine->search(MatrixView(nullptr, 0, 8), c.view(), 5);
    EXPECT_EQ(q0.num_queries(), 0u);
    EXPECT_EQ(engine->scores(q.view(), MatrixView(nullptr, 0, 8)).rows(), 4u);
    EXPECT_TRUE(engine
                    ->batch_similarity_search(std::span<const float>(q.row(0), 8),
                                              MatrixView(nullptr, 0, 8))
                    .empty());
  }
}

// scores() and batch_similarity_search() agree with the reference and, bit for bit, with search().
TEST(Similarity, ScoreMatrixMatchesReferenceAndSearch) {
  std::mt19937_64 rng(test_seed() + 17);
  for (Metric metric : kAllMetrics) {
    const TestMatrix q = random_rows(rng, 11, 131, 3), c = random_rows(rng, 5003, 131, 1);
    const Reference ref(q.view(), c.view(), metric);
    for (auto& engine : engines()) {
      SCOPED_TRACE(std::string(to_string(engine->isa())) + " " + std::string(to_string(metric)));
      for (Tier tier : {Tier::Sequential, Tier::Cpu}) {
        const Matrix s = engine->scores(q.view(), c.view(), metric, tier);
        ASSERT_EQ(s.rows(), 11u);
        ASSERT_EQ(s.dim(), 5003u);
        for (std::size_t i = 0; i < 11; ++i) {
          for (std::size_t j = 0; j < 5003; j += 7) {
            const RefScore r = ref.score(i, j);
            ASSERT_NEAR(s(i, j), r.value, r.bound) << i << "," << j;
          }
        }
        const Hits h = engine->search(q.view(), c.view(), 25, metric, tier);
        for (std::size_t i = 0; i < 11; ++i) {
          for (std::size_t j = 0; j < 25; ++j) {
            ASSERT_EQ(h.scores(i)[j], s(i, static_cast<std::size_t>(h.ids(i)[j])));
          }
        }
        const std::vector<float> one = engine->batch_similarity_search(
            std::span<const float>(q.row(3), 131), c.view(), metric, tier);
        for (std::size_t j = 0; j < 5003; ++j) ASSERT_EQ(one[j], s(3, j)) << j;
        const std::vector<float> norms = engine->squared_norms(c.view());
        const Matrix kept = engine->scores(q.view(), CandidateView(c.view(), norms), metric, tier);
        for (std::size_t i = 0; i < 11; ++i) {
          for (std::size_t j = 0; j < 5003; ++j) ASSERT_EQ(kept(i, j), s(i, j)) << i << "," << j;
        }
      }
    }
  }
}

// Kept norms are what Cosine and L2 read: norms four times too large halve every cosine exactly
// (1/sqrt(4n) = 0.5/sqrt(n) in binary floating point) and add 3|c|^2 to every squared distance.
TEST(Similarity, KeptNormsAreReadNotRecomputed) {
  std::mt19937_64 rng(test_seed() + 29);
  const TestMatrix q = random_rows(rng, 6, 96, 0), c = random_rows(rng, 700, 96, 0);
  for (auto& engine : engines()) {
    SCOPED_TRACE(std::string(to_string(engine->isa())));
    std::vector<float> norms = engine->squared_norms(c.view());
    for (float& n : norms) n *= 4.0f;
    const CandidateView wrong(c.view(), norms);
    for (Tier tier : {Tier::Sequential, Tier::Cpu}) {
      const Matrix right = engine->scores(q.view(), c.view(), Metric::Cosine, tier);
      const Matrix scaled = engine->scores(q.view(), wrong, Metric::Cosine, tier);
      const Hits hits = engine->search(q.view(), wrong, 5, Metric::Cosine, tier);
      for (std::size_t i = 0; i < 6; ++i) {
        for (std::size_t j = 0; j < 700; ++j) ASSERT_EQ(scaled(i, j), 0.5f * right(i, j));
        ASSERT_EQ(hits.scores(i)[0], 0.5f * right(i, static_cast<std::size_t>(hits.ids(i)[0])));
      }
      const Matrix l2 = engine->scores(q.view(), c.view(), Metric::L2, tier);
      const Matrix l2_wrong = engine->scores(q.view(), wrong, Metric::L2, tier);
      for (std::size_t j = 0; j < 700; ++j) {
        ASSERT_NEAR(l2_wrong(0, j), l2(0, j) + 0.75f * norms[j], 1e-3f * (1.0f + norms[j])) << j;
      }
    }
  }
}

// An engine's candidate set keeps the rows it was given (moved, not copied) and their norms.
TEST(Similarity, CandidateSetKeepsRowsAndNorms) {
  std::mt19937_64 rng(test_seed() + 31);
  const TestMatrix c = random_rows(rng, 300, 40, 0), q = random_rows(rng, 3, 40, 0);
  Matrix rows = Matrix::copy_of(c.view());
  const float* data = rows.data();
  const SimilarityEngine& engine = *engines().front();
  const CandidateSet set = engine.candidate_set(std::move(rows));
  EXPECT_EQ(set.matrix().data(), data);
  EXPECT_EQ(set.rows(), 300u);
  EXPECT_EQ(set.dim(), 40u);
  const std::vector<float> norms = engine.squared_norms(c.view());
  ASSERT_EQ(set.squared_norms().size(), 300u);
  for (std::size_t i = 0; i < 300; ++i) EXPECT_EQ(set.squared_norms()[i], norms[i]);
  const Hits a = engine.search(q.view(), set, 7);
  const Hits b = engine.search(q.view(), c.view(), 7);
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t j = 0; j < 7; ++j) {
      EXPECT_EQ(a.ids(i)[j], b.ids(i)[j]);
      EXPECT_EQ(a.scores(i)[j], b.scores(i)[j]);
    }
  }
  const CandidateView part = set.view().slice(100, 50);
  EXPECT_EQ(part.rows().rows(), 50u);
  EXPECT_EQ(part.squared_norms()[0], norms[100]);
  try {
    (void)CandidateView(c.view(), std::span<const float>(norms.data(), 299));
    FAIL() << "a norm count that is not the row count must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("299 squared norms for 300 rows"), std::string::npos)
        << e.what();
  }
}

// Rows longer than 1024 floats go through full query tiles in chunks, with accumulators parked
// between chunks; one-query scans are never chunked. Both must agree with the reference, and a
// score must have the same bits either way (scores() on 9 queries vs the 1-query scan).
TEST(Similarity, LongRowsInChunks) {
  std::mt19937_64 rng(test_seed() + 23);
  std::size_t salt = 600;
  for (std::size_t dim : {1025, 1536, 2049, 4096}) {
    for (std::size_t nq : {4, 9}) {
      run_random_case({nq, 301, dim, 17, kAllMetrics[salt % 3], 3}, ++salt);
      if (HasFatalFailure()) return;
    }
    const TestMatrix q = random_rows(rng, 9, dim, 1), c = random_rows(rng, 203, dim, 2);
    for (auto& engine : engines()) {
      const Matrix s = engine->scores(q.view(), c.view(), Metric::L2, Tier::Sequential);
      const std::vector<float> one = engine->batch_similarity_search(
          std::span<const float>(q.row(5), dim), c.view(), Metric::L2, Tier::Sequential);
      for (std::size_t j = 0; j < 203; ++j) {
        ASSERT_EQ(one[j], s(5, j)) << "dim " << dim << " isa " << to_string(engine->isa());
      }
    }
  }
}

TEST(Similarity, RepeatedRunsAreIdentical) {
  std::mt19937_64 rng(test_seed() + 19);
  const TestMatrix q = random_rows(rng, 40, 96), c = random_rows(rng, 30000, 96);
  SimilarityEngine engine;
  const Hits first = engine.search(q.view(), c.view(), 50, Metric::Cosine, Tier::Cpu);
  for (int run = 0; run < 3; ++run) {
    const Hits again = engine.search(q.view(), c.view(), 50, Metric::Cosine, Tier::Cpu);
    for (std::size_t i = 0; i < 40; ++i) {
      ASSERT_TRUE(std::equal(first.ids(i).begin(), first.ids(i).end(), again.ids(i).begin()));
      ASSERT_TRUE(
          std::equal(first.scores(i).begin(), first.scores(i).end(), again.scores(i).begin()));
    }
  }
}

}  // namespace
}  // namespace hetcache::test
