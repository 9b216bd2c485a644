// Test helpers for compact sets: data that stresses exact mode's candidate list, and the check
// that two searches returned the same hits bit for bit.
#pragma once

#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "reference.hpp"

namespace hetcache::test {

inline std::uint32_t bits_of(float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

// Candidates that make exact mode's candidate list work: random rows, then near-duplicates of a
// few of them (differences far below bf16's or int8's resolution, so the compact keys tie while
// the f32 keys do not), exact copies (real f32 ties, decided by id), tight clusters, a zero row,
// and optionally a NaN row and an infinite row.
inline TestMatrix stress_rows(std::mt19937_64& rng, std::size_t rows, std::size_t dim,
                              bool non_finite) {
  TestMatrix m = random_rows(rng, rows, dim, 3);
  std::normal_distribution<float> tiny(0.0f, 1e-4f), small(0.0f, 0.02f);
  std::uniform_int_distribution<std::size_t> any(0, rows - 1);
  for (std::size_t r = 0; r < rows / 3; ++r) {
    const std::size_t from = any(rng) % 8;  // near-duplicates of 8 rows: many per row
    for (std::size_t i = 0; i < dim; ++i) m.row(r * 3)[i] = m.row(from)[i] + tiny(rng);
  }
  for (std::size_t r = 1; r < rows / 3; r += 7) std::copy_n(m.row(r * 3), dim, m.row(r * 3 + 1));
  for (std::size_t r = 2; r < rows / 3; r += 3) {
    for (std::size_t i = 0; i < dim; ++i) m.row(r * 3 + 2)[i] = m.row(5)[i] + small(rng);
  }
  std::fill_n(m.row(rows - 1), dim, 0.0f);
  if (non_finite) {
    m.row(rows - 2)[dim / 2] = std::nanf("");
    m.row(rows - 3)[0] = std::numeric_limits<float>::infinity();
  }
  return m;
}

// Queries: random, copies of near-duplicated rows (the hardest: their top-k is all near-ties),
// and a zero query.
inline TestMatrix stress_queries(std::mt19937_64& rng, const TestMatrix& rows, std::size_t count) {
  TestMatrix q = random_rows(rng, count, rows.dim);
  for (std::size_t r = 0; r + 1 < count; r += 2) std::copy_n(rows.row(r % 8), rows.dim, q.row(r));
  if (count > 2) std::fill_n(q.row(count - 1), rows.dim, 0.0f);
  return q;
}

inline void expect_same_hits(const Hits& want, const Hits& got, const std::string& where) {
  ASSERT_EQ(want.num_queries(), got.num_queries()) << where;
  ASSERT_EQ(want.k(), got.k()) << where;
  for (std::size_t q = 0; q < want.num_queries(); ++q) {
    for (std::size_t i = 0; i < want.k(); ++i) {
      const float a = want.scores(q)[i], b = got.scores(q)[i];
      ASSERT_EQ(want.ids(q)[i], got.ids(q)[i]) << where << " query " << q << " rank " << i;
      ASSERT_TRUE(bits_of(a) == bits_of(b) || (std::isnan(a) && std::isnan(b)))
          << where << " query " << q << " rank " << i << ": " << a << " vs " << b;
    }
  }
}

}  // namespace hetcache::test
