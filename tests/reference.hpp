// Test helpers: random data and a float64 reference with a rigorous error bound per score.
#pragma once

#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace hetcache::test {

// A fresh seed per run (printed on failure); HETCACHE_TEST_SEED=<n> replays one.
inline std::uint64_t test_seed() {
  static const std::uint64_t seed = [] {
    if (const char* s = std::getenv("HETCACHE_TEST_SEED"))
      return std::uint64_t{std::strtoull(s, nullptr, 10)};
    return (std::uint64_t{std::random_device{}()} << 32) ^ std::uint64_t{std::random_device{}()};
  }();
  return seed;
}

// Rows of `dim` floats uniform in [-1, 1) (never all zero) at `stride` >= dim; padding is filled
// with a sentinel so a kernel that reads past dim gets a wrong answer.
struct TestMatrix {
  std::vector<float> storage;
  std::size_t rows = 0, dim = 0, stride = 0;
  MatrixView view() const {
    return MatrixView(storage.empty() ? nullptr : storage.data(), rows, dim, stride);
  }
  float* row(std::size_t r) { return storage.data() + r * stride; }
  const float* row(std::size_t r) const { return storage.data() + r * stride; }
};

inline TestMatrix random_rows(std::mt19937_64& rng, std::size_t rows, std::size_t dim,
                              std::size_t pad = 0) {
  TestMatrix m;
  m.rows = rows;
  m.dim = dim;
  m.stride = dim + pad;
  m.storage.assign(rows * m.stride, 1e30f);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < dim; ++c) m.row(r)[c] = uniform(rng);
  }
  return m;
}

// Reference score (reported convention: squared distance for L2) and a bound on |ours - ref|
// valid for every ISA: partial sums of at most ceil(dim / 8) + a few terms, each product rounded.
struct RefScore {
  double value;
  double bound;
};

class Reference {
 public:
  // bound_scale widens every bound (the GPU tier's GEMM sums in another order, or in lower
  // precision, than the CPU kernels the default bound is made for).
  Reference(MatrixView queries, MatrixView candidates, Metric metric, double bound_scale = 1.0)
      : q_(queries),
        c_(candidates),
        metric_(metric),
        qnorm2_(norms2(queries)),
        cnorm2_(norms2(candidates)),
        bound_scale_(bound_scale) {}

  // The bound's relative error factor for dim (bound_scale multiplies it).
  static double gamma(std::size_t dim) {
    return 2.0 * (static_cast<double>(dim) / 8.0 + 10.0) * std::ldexp(1.0, -24);
  }

  RefScore score(std::size_t q, std::size_t c) const {
    const std::size_t dim = q_.dim();
    double dot = 0, abs_dot = 0;
    for (std::size_t j = 0; j < dim; ++j) {
      const double p = double(q_.row(q)[j]) * double(c_.row(c)[j]);
      dot += p;
      abs_dot += std::fabs(p);
    }
    const double gamma = Reference::gamma(dim) * bound_scale_;
    const double tiny = 1e-30;
    switch (metric_) {
      case Metric::Dot:
        return {dot, gamma * abs_dot + tiny};
      case Metric::Cosine: {
        const double denom = std::sqrt(qnorm2_[q] * cnorm2_[c]);
        if (!(denom > 0)) return {std::isnan(dot) ? dot : 0.0, tiny};
        const double cos = dot / denom;
        return {cos, gamma * (abs_dot / denom + 2 * std::fabs(cos)) + tiny};
      }
      case Metric::L2: {
        const double dist = std::max(0.0, qnorm2_[q] + cnorm2_[c] - 2 * dot);
        return {std::isnan(dot) ? dot : dist,
                gamma * (qnorm2_[q] + cnorm2_[c] + 2 * abs_dot) + tiny};
      }
    }
    return {0, 0};
  }

  // Is reference score a strictly better than b by more than both bounds (NaN worst)?
  bool clearly_better(const RefScore& a, const RefScore& b) const {
    if (std::isnan(a.value)) return false;
    if (std::isnan(b.value)) return true;
    const double margin =
        a.bound + b.bound + 1e-6 * std::max(std::fabs(a.value), std::fabs(b.value));
    return metric_ == Metric::L2 ? a.value < b.value - margin : a.value > b.value + margin;
  }

 private:
  static std::vector<double> norms2(MatrixView m) {
    std::vector<double> n(m.rows());
    for (std::size_t r = 0; r < m.rows(); ++r) {
      for (std::size_t j = 0; j < m.dim(); ++j) n[r] += double(m.row(r)[j]) * double(m.row(r)[j]);
    }
    return n;
  }
  MatrixView q_, c_;
  Metric metric_;
  std::vector<double> qnorm2_, cnorm2_;
  double bound_scale_ = 1.0;
};

// Checks one query's hits against the reference: count, order rules, each score within its
// bound, and no excluded candidate clearly better than the worst kept one.
inline void expect_valid_hits(const Reference& ref, const Hits& hits, std::size_t q, std::size_t n,
                              std::size_t k, Metric metric) {
  const std::size_t expected = std::min(k, n);
  ASSERT_EQ(hits.k(), expected);
  const auto scores = hits.scores(q);
  const auto ids = hits.ids(q);
  std::vector<char> kept(n, 0);
  for (std::size_t i = 0; i < expected; ++i) {
    ASSERT_GE(ids[i], 0);
    ASSERT_LT(static_cast<std::size_t>(ids[i]), n);
    ASSERT_FALSE(kept[ids[i]]) << "duplicate id " << ids[i];
    kept[ids[i]] = 1;
    const RefScore r = ref.score(q, static_cast<std::size_t>(ids[i]));
    if (std::isnan(r.value)) {
      ASSERT_TRUE(std::isnan(scores[i])) << "query " << q << " id " << ids[i];
    } else {
      ASSERT_NEAR(scores[i], r.value, r.bound) << "query " << q << " hit " << i << " id " << ids[i];
    }
    if (i > 0) {  // best first; equal scores by lower id; NaN last
      const float a = scores[i - 1], b = scores[i];
      if (std::isnan(a)) {
        ASSERT_TRUE(std::isnan(b)) << "real score after NaN at hit " << i;
        ASSERT_LT(ids[i - 1], ids[i]);
      } else if (!std::isnan(b)) {
        if (a == b) {
          ASSERT_LT(ids[i - 1], ids[i]) << "tie not broken by lower id at hit " << i;
        } else {
          ASSERT_TRUE(metric == Metric::L2 ? a < b : a > b) << "out of order at hit " << i;
        }
      }
    }
  }
  if (expected == 0 || expected == n) return;
  const RefScore worst = ref.score(q, static_cast<std::size_t>(ids[expected - 1]));
  for (std::size_t c = 0; c < n; ++c) {
    if (kept[c]) continue;
    const RefScore other = ref.score(q, c);
    if (std::isnan(worst.value) && std::isnan(other.value)) {
      ASSERT_GT(static_cast<std::int64_t>(c), ids[expected - 1])
          << "NaN ids must come lowest first";
    }
    ASSERT_FALSE(ref.clearly_better(other, worst))
        << "query " << q << ": excluded candidate " << c << " beats kept " << ids[expected - 1];
  }
}

}  // namespace hetcache::test
