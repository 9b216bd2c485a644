// Compact candidate sets (f16 / bf16 / int8): encodings bit for bit against the reference rules,
// exact mode against the f32 search (same ids, same score bits) on data built to stress its
// candidate list (near-duplicates, exact ties, clusters, NaN and infinite rows), fast mode's
// recall, sizes, and the errors of bad calls.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "compute/cpu/compact_abi.hpp"
#include "compute/cpu/compact_rows.hpp"
#include "compact_data.hpp"
#include "reference.hpp"

namespace hetcache {
namespace {

using cpu::ElementKind;
using test::bits_of;
using test::expect_same_hits;
using test::stress_queries;
using test::stress_rows;

TEST(CompactEncoding, ReferenceRulesOnKnownValues) {
  EXPECT_EQ(cpu::f16_from_bits(bits_of(1.0f)), 0x3C00);
  EXPECT_EQ(cpu::f16_from_bits(bits_of(-2.0f)), 0xC000);
  EXPECT_EQ(cpu::f16_from_bits(bits_of(65504.0f)), 0x7BFF);
  EXPECT_EQ(cpu::f16_from_bits(bits_of(65519.0f)), 0x7BFF);
  EXPECT_EQ(cpu::f16_from_bits(bits_of(65520.0f)), 0x7C00);    // the tie rounds to even: infinity
  EXPECT_EQ(cpu::f16_from_bits(bits_of(0x1p-24f)), 0x0001);    // smallest subnormal
  EXPECT_EQ(cpu::f16_from_bits(bits_of(0x1p-25f)), 0x0000);    // the tie rounds to even: zero
  EXPECT_EQ(cpu::f16_from_bits(bits_of(0x1.8p-24f)), 0x0002);  // tie between 1 and 2: even
  EXPECT_EQ(cpu::f16_from_bits(bits_of(1.0f + 0x1p-11f)), 0x3C00);  // tie: even mantissa
  EXPECT_EQ(cpu::f16_from_bits(bits_of(1.0f + 0x3p-11f)), 0x3C02);
  EXPECT_TRUE(std::isnan(cpu::float_from_f16(cpu::f16_from_bits(bits_of(std::nanf(""))))));
  EXPECT_EQ(cpu::float_from_f16(0x0001), 0x1p-24f);
  EXPECT_EQ(cpu::float_from_f16(0x7BFF), 65504.0f);

  EXPECT_EQ(cpu::bf16_from_bits(0x3F808000u), 0x3F80);  // tie: stays even
  EXPECT_EQ(cpu::bf16_from_bits(0x3F818000u), 0x3F82);  // tie: rounds up to even
  EXPECT_EQ(cpu::bf16_from_bits(0x3F808001u), 0x3F81);
  EXPECT_EQ(cpu::bf16_from_bits(bits_of(1e-39f)), 0x0000);  // under 2^-126: zero
  EXPECT_EQ(cpu::bf16_from_bits(bits_of(-1e-39f)), 0x8000);
  EXPECT_EQ(cpu::bf16_from_bits(bits_of(std::numeric_limits<float>::infinity())), 0x7F80);
  EXPECT_TRUE(std::isnan(cpu::float_from_bf16(cpu::bf16_from_bits(0x7F800001u))));  // sNaN kept
}

#if (defined(__x86_64__) || defined(_M_X64)) && !defined(HETCACHE_X86_KERNELS)
#error "an x86 test build must see HETCACHE_X86_KERNELS, or it tests the scalar kernels only"
#endif

std::vector<const cpu::CompactKernelTable*> compact_tables() {
  std::vector<const cpu::CompactKernelTable*> tables{&cpu::kScalarCompactKernels};
#if defined(HETCACHE_X86_KERNELS)
  if (isa_supported(Isa::Avx2)) tables.push_back(&cpu::kAvx2CompactKernels);
  if (isa_supported(Isa::Avx512)) tables.push_back(&cpu::kAvx512CompactKernels);
  if (cpu::cpu_has_avx512_bf16()) {
    tables.push_back(&cpu::kAvx512Bf16CompactKernels);
  } else {
    std::printf("[ note ] no AVX512-BF16 on this CPU: the vdpbf16ps kernel is not run\n");
  }
  if (cpu::cpu_has_avx512_vnni()) {
    tables.push_back(&cpu::kAvx512VnniCompactKernels);
  } else {
    std::printf("[ note ] no AVX512-VNNI on this CPU: the vpdpbusd kernel is not run\n");
  }
  if (cpu::cpu_has_avx_vnni()) {
    tables.push_back(&cpu::kAvxVnniCompactKernels);
  } else {
    std::printf("[ note ] no AVX-VNNI on this CPU: the VEX vpdpbusd kernel is not run\n");
  }
#endif
  return tables;
}

// Rows mixing random values with every special case the encoders treat apart.
std::vector<float> awkward_rows(std::size_t rows, std::size_t dim, std::mt19937_64& rng) {
  const float specials[] = {
      0.0f,         -0.0f,      1e-39f,           -1e-45f,
      0x1p-25f,     0x1.8p-24f, 65504.0f,         65519.0f,
      65520.0f,     -70000.0f,  1.00390625f,      1.01171875f,
      3.4e38f,      0x1p-126f,  0x1.fffffep-127f, std::numeric_limits<float>::infinity(),
      std::nanf("")};
  std::uniform_real_distribution<float> uniform(-4.0f, 4.0f);
  std::uniform_int_distribution<std::size_t> pick(0, std::size(specials) - 1);
  std::vector<float> out(rows * dim);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t i = 0; i < dim; ++i) {
      // Rows 0-2 stay finite (I8 then codes them), the others take a special value in 1 of 4.
      const bool special = r >= 3 && rng() % 4 == 0;
      float v = special ? specials[pick(rng)] : uniform(rng);
      if (r < 3 && !std::isfinite(v)) v = 1.0f;
      out[r * dim + i] = v;
    }
  }
  return out;
}

TEST(CompactEncoding, EveryUnitMatchesTheReferenceBitForBit) {
  std::mt19937_64 rng(test::test_seed());
  const auto tables = compact_tables();
  for (const std::size_t dim : {1, 15, 16, 37, 64, 100}) {
    const std::size_t rows = 12;
    const std::vector<float> src = awkward_rows(rows, dim, rng);
    const cpu::Rows view{src.data(), rows, dim, dim};
    for (const ElementKind kind : {ElementKind::F16, ElementKind::Bf16, ElementKind::I8}) {
      const std::size_t bytes = kind == ElementKind::I8 ? 1 : 2;
      std::vector<unsigned char> want(rows * dim * bytes);
      std::vector<float> want_scales(rows);
      for (std::size_t r = 0; r < rows; ++r) {
        switch (kind) {
          case ElementKind::F16:
            cpu::encode_row_reference<ElementKind::F16>(src.data() + r * dim, dim,
                                                        want.data() + r * dim * bytes, nullptr);
            break;
          case ElementKind::Bf16:
            cpu::encode_row_reference<ElementKind::Bf16>(src.data() + r * dim, dim,
                                                         want.data() + r * dim * bytes, nullptr);
            break;
          case ElementKind::I8:
            cpu::encode_row_reference<ElementKind::I8>(src.data() + r * dim, dim,
                                                       want.data() + r * dim, &want_scales[r]);
            break;
        }
      }
      for (const cpu::CompactKernelTable* table : tables) {
        std::vector<unsigned char> got(rows * dim * bytes, 0xAB);
        std::vector<float> scales(rows, -1.0f);
        table->encode(view, kind, got.data(), dim, scales.data());
        EXPECT_EQ(got, want) << table->name << " kind " << static_cast<int>(kind) << " dim " << dim;
        if (kind == ElementKind::I8) {
          for (std::size_t r = 0; r < rows; ++r) {
            EXPECT_EQ(bits_of(scales[r]) == bits_of(want_scales[r]) ||
                          (std::isnan(scales[r]) && std::isnan(want_scales[r])),
                      true)
                << table->name << " row " << r;
          }
          EXPECT_FALSE(std::isnan(want_scales[0]));  // finite rows are coded
        }
        // Decoding: the reference decoders' bits (I8: scale * code rounded once), NaN as NaN.
        for (std::size_t r = 0; r < rows; ++r) {
          std::vector<float> decoded(dim + 1, 7.0f);  // one past the row: must stay untouched
          table->decode(want.data() + r * dim * bytes, kind, dim, want_scales[r], decoded.data());
          for (std::size_t i = 0; i < dim; ++i) {
            const unsigned char* code = want.data() + (r * dim + i) * bytes;
            std::uint16_t half = 0;
            std::memcpy(&half, code, bytes == 2 ? 2 : 0);
            const float expected =
                kind == ElementKind::F16 ? cpu::float_from_f16(half)
                : kind == ElementKind::Bf16
                    ? cpu::float_from_bf16(half)
                    : want_scales[r] * static_cast<float>(static_cast<signed char>(*code));
            EXPECT_TRUE(bits_of(decoded[i]) == bits_of(expected) ||
                        (std::isnan(decoded[i]) && std::isnan(expected)))
                << table->name << " decode kind " << static_cast<int>(kind) << " dim " << dim
                << " row " << r << " element " << i;
          }
          EXPECT_EQ(decoded[dim], 7.0f) << table->name << " wrote past the row";
        }
      }
    }
  }
}

struct EngineCase {
  Isa isa;
  bool quantize;  // SimilarityOptions::quantize_queries (matters with BF16 / VNNI / AVX-VNNI)
};

std::vector<EngineCase> engine_cases() {
  std::vector<EngineCase> cases{{Isa::Scalar, false}};
  if (isa_supported(Isa::Avx2)) cases.push_back({Isa::Avx2, false});
  if (isa_supported(Isa::Avx2) && cpu::cpu_has_avx_vnni()) cases.push_back({Isa::Avx2, true});
  if (isa_supported(Isa::Avx512)) {
    cases.push_back({Isa::Avx512, false});
    if (cpu::cpu_has_avx512_bf16() || cpu::cpu_has_avx512_vnni()) {
      cases.push_back({Isa::Avx512, true});
    }
  }
  return cases;
}

TEST(CompactExact, SameIdsAndScoreBitsAsTheF32SearchOnEveryTypeIsaMetricAndTier) {
  std::mt19937_64 rng(test::test_seed());
  for (const bool non_finite : {false, true}) {
    const test::TestMatrix rows = stress_rows(rng, 1500, 83, non_finite);
    const test::TestMatrix queries = stress_queries(rng, rows, 9);
    for (const EngineCase& e : engine_cases()) {
      SimilarityOptions options;
      options.isa = e.isa;
      options.quantize_queries = e.quantize;
      const SimilarityEngine engine(options);
      const CandidateSet f32 = engine.candidate_set(Matrix::copy_of(rows.view()));
      for (const StorageType type : {StorageType::F16, StorageType::Bf16, StorageType::I8}) {
        const CompactSet set = engine.compact_set(rows.view(), type);
        for (const Metric metric : {Metric::Dot, Metric::Cosine, Metric::L2}) {
          for (const Tier tier : {Tier::Sequential, Tier::Cpu}) {
            for (const std::size_t k : {1, 10, 100}) {
              const std::string where =
                  std::string(to_string(e.isa)) + (e.quantize ? "+quantized " : " ") +
                  std::string(to_string(type)) + " " + std::string(to_string(metric)) + " " +
                  std::string(to_string(tier)) + " k=" + std::to_string(k) +
                  (non_finite ? " with NaN/inf rows" : "") +
                  " seed=" + std::to_string(test::test_seed());
              const Hits want = engine.search(queries.view(), f32, k, metric, tier);
              const Hits got =
                  engine.search(queries.view(), set, k, metric, ScoreMode::Exact, tier);
              expect_same_hits(want, got, where);
            }
          }
        }
      }
    }
  }
}

// Rounding errors that all point one way, so the compact keys order two rows the other way round
// from the f32 keys: row 0's first half (or the query's) is stored rounded down by almost half a
// unit in every element, which row 1's one larger element beats after encoding but not before.
// Only the bound's candidate term (row 0 rounded) or its query term (the query rounded to bf16 by
// vdpbf16ps) keeps row 0 in the candidate list.
TEST(CompactExact, RoundingThatFavoursAnotherRowIsCaughtByTheBound) {
  const std::size_t dim = 96, half = dim / 2;
  for (const EngineCase& e : engine_cases()) {
    SimilarityOptions options;
    options.isa = e.isa;
    options.quantize_queries = e.quantize;
    const SimilarityEngine engine(options);
    for (const StorageType type : {StorageType::Bf16, StorageType::F16}) {
      const float a = type == StorageType::Bf16 ? 1.0f + 0.99f * 0x1p-8f : 1.0f + 0.99f * 0x1p-11f;
      const float bump = type == StorageType::Bf16 ? 1.125f : 1.0f + 0x1p-6f;
      for (const bool query_side : {false, true}) {
        Matrix rows(2, dim), query(1, dim);
        for (std::size_t i = 0; i < dim; ++i) {
          rows(0, i) = i < half ? (query_side ? 1.0f : a) : 0.0f;
          rows(1, i) = i < half ? 0.0f : (i == half ? bump : 1.0f);
          query(0, i) = i < half && query_side ? a : 1.0f;
        }
        // The query-side case needs a kernel that rounds the query (vdpbf16ps on bf16 rows).
        if (query_side && !(e.isa == Isa::Avx512 && e.quantize && type == StorageType::Bf16 &&
                            cpu::cpu_has_avx512_bf16())) {
          continue;
        }
        const CompactSet set = engine.compact_set(rows.view(), type);
        const Hits want = engine.search(query.view(), rows.view(), 1, Metric::Dot);
        ASSERT_EQ(want.ids(0)[0], 0);
        const Hits fast = engine.search(query.view(), set, 1, Metric::Dot, ScoreMode::Fast);
        EXPECT_EQ(fast.ids(0)[0], 1) << "the data no longer fools the compact keys";
        expect_same_hits(want, engine.search(query.view(), set, 1, Metric::Dot),
                         std::string(to_string(e.isa)) + (e.quantize ? "+quantized " : " ") +
                             std::string(to_string(type)) + (query_side ? " query" : " row"));
      }
    }
  }
}

// The same for a query coded as int8 by the vpdpbusd kernel: its largest element (127) makes the
// code step 1, so elements of 1.49 are read as 1; row 0 (ones) wins in f32 by 23.5 but loses to
// row 1 (ones and one 127/120, every row element stored exactly) by 0.058 after coding.
TEST(CompactExact, AnInt8CodedQueryThatFavoursAnotherRowIsCaughtByTheBound) {
  std::vector<Isa> isas;  // the ISAs whose int8 kernel codes the query (vpdpbusd)
  if (isa_supported(Isa::Avx512) && cpu::cpu_has_avx512_vnni()) isas.push_back(Isa::Avx512);
  if (isa_supported(Isa::Avx2) && cpu::cpu_has_avx_vnni()) isas.push_back(Isa::Avx2);
  if (isas.empty()) {
    GTEST_SKIP() << "no AVX512-VNNI or AVX-VNNI on this CPU: no vpdpbusd kernel is run";
  }
  const std::size_t dim = 97, half = 48;
  Matrix rows(2, dim), query(1, dim);
  for (std::size_t i = 0; i < dim; ++i) {
    rows(0, i) = i < half ? 1.0f : 0.0f;
    rows(1, i) = i < half || i == dim - 1 ? 0.0f : (i == half ? 127.0f / 120.0f : 1.0f);
    query(0, i) = i < half ? 1.49f : (i == dim - 1 ? 127.0f : 1.0f);
  }
  for (const Isa isa : isas) {
    const SimilarityEngine engine(SimilarityOptions{.isa = isa});
    const CompactSet set = engine.compact_set(rows.view(), StorageType::I8);
    const Hits want = engine.search(query.view(), rows.view(), 1, Metric::Dot);
    ASSERT_EQ(want.ids(0)[0], 0);
    EXPECT_EQ(engine.search(query.view(), set, 1, Metric::Dot, ScoreMode::Fast).ids(0)[0], 1)
        << to_string(isa) << ": the data no longer fools the compact keys";
    expect_same_hits(want, engine.search(query.view(), set, 1, Metric::Dot),
                     std::string(to_string(isa)) + " i8 vpdpbusd query");
  }
}

TEST(CompactExact, ManyQueriesSplitAcrossThreadsAndRowsKeptElsewhere) {
  std::mt19937_64 rng(test::test_seed());
  const test::TestMatrix rows = stress_rows(rng, 3000, 256, false);
  const test::TestMatrix queries = stress_queries(rng, rows, 70);
  const SimilarityEngine engine;
  const CandidateSet f32 = engine.candidate_set(Matrix::copy_of(rows.view()));
  for (const StorageType type : {StorageType::Bf16, StorageType::I8}) {
    const CompactSet lean = engine.compact_set(rows.view(), type, /*keep_f32=*/false);
    EXPECT_TRUE(lean.f32_rows().rows().empty());
    const Hits want = engine.search(queries.view(), f32, 20, Metric::Cosine, Tier::Cpu);
    expect_same_hits(want, engine.search(queries.view(), lean, f32, 20, Metric::Cosine, Tier::Cpu),
                     std::string(to_string(type)) + " with the f32 rows passed in");
    expect_same_hits(want,
                     engine.search(queries.view(), lean, CandidateView(rows.view()), 20,
                                   Metric::Cosine, Tier::Cpu),
                     std::string(to_string(type)) + " with rows whose norms are computed");
  }
}

TEST(CompactFast, RecallAndScoresOfTheLowPrecisionKeys) {
  std::mt19937_64 rng(test::test_seed());
  const test::TestMatrix rows = test::random_rows(rng, 4000, 128);
  const test::TestMatrix queries = test::random_rows(rng, 16, 128);
  const SimilarityEngine engine;
  const CandidateSet f32 = engine.candidate_set(Matrix::copy_of(rows.view()));
  const std::size_t k = 10;
  const Hits want = engine.search(queries.view(), f32, k, Metric::Cosine);
  const struct {
    StorageType type;
    double min_recall;
  } cases[] = {{StorageType::F16, 0.97}, {StorageType::Bf16, 0.85}, {StorageType::I8, 0.8}};
  for (const auto& c : cases) {
    const CompactSet set = engine.compact_set(rows.view(), c.type, /*keep_f32=*/false);
    const Hits got = engine.search(queries.view(), set, k, Metric::Cosine, ScoreMode::Fast);
    std::size_t found = 0;
    for (std::size_t q = 0; q < queries.rows; ++q) {
      for (const std::int64_t id : got.ids(q)) {
        for (const std::int64_t w : want.ids(q)) found += id == w ? 1 : 0;
      }
      // Each fast score is the cosine of the query with the stored row, to f32 rounding.
      for (std::size_t i = 0; i < k; ++i) {
        const std::vector<float> stored = set.decoded_row(static_cast<std::size_t>(got.ids(q)[i]));
        // The vdpbf16ps kernel multiplies the query rounded to bf16, the vpdpbusd kernel the
        // query coded as int8 (scale max|q| / 127, as the rows).
        const bool avx512 = engine.isa() == Isa::Avx512;
        std::vector<float> qr(queries.row(q), queries.row(q) + rows.dim);
        if (c.type == StorageType::Bf16 && avx512 && cpu::cpu_has_avx512_bf16()) {
          for (float& x : qr) x = cpu::float_from_bf16(cpu::bf16_from_bits(bits_of(x)));
        }
        const bool codes_query = avx512 ? cpu::cpu_has_avx512_vnni()
                                        : engine.isa() == Isa::Avx2 && cpu::cpu_has_avx_vnni();
        if (c.type == StorageType::I8 && codes_query) {
          float max_abs = 0;
          for (const float x : qr) max_abs = std::max(max_abs, std::fabs(x));
          const float scale = cpu::i8_scale(max_abs);
          for (float& x : qr) x = scale * std::nearbyint(x / scale);
        }
        const float* cr = rows.row(static_cast<std::size_t>(got.ids(q)[i]));
        double dot = 0, qq = 0, cc = 0;
        for (std::size_t j = 0; j < rows.dim; ++j) {
          dot += static_cast<double>(qr[j]) * stored[j];
          qq += static_cast<double>(queries.row(q)[j]) * queries.row(q)[j];
          cc += static_cast<double>(cr[j]) * cr[j];
        }
        EXPECT_NEAR(got.scores(q)[i], dot / std::sqrt(qq * cc), 1e-5) << to_string(c.type);
      }
    }
    const double recall = static_cast<double>(found) / static_cast<double>(queries.rows * k);
    std::printf("[ note ] fast %s recall@10 = %.3f\n", std::string(to_string(c.type)).c_str(),
                recall);
    EXPECT_GE(recall, c.min_recall) << to_string(c.type);
  }
}

TEST(CompactSet, BytesErrorsAndNames) {
  std::mt19937_64 rng(test::test_seed());
  const test::TestMatrix rows = test::random_rows(rng, 1000, 768);
  const SimilarityEngine engine;
  const std::size_t f32_bytes = rows.rows * 768 * sizeof(float);
  const CompactSet bf16 = engine.compact_set(rows.view(), StorageType::Bf16, false);
  const CompactSet f16 = engine.compact_set(rows.view(), StorageType::F16, false);
  const CompactSet i8 = engine.compact_set(rows.view(), StorageType::I8, false);
  const CompactSet f32 = engine.compact_set(rows.view(), StorageType::F32);
  EXPECT_EQ(bf16.type(), StorageType::Bf16);
  EXPECT_EQ(bf16.rows(), rows.rows);
  EXPECT_EQ(bf16.dim(), 768u);
  EXPECT_LE(bf16.compact_bytes(), f32_bytes * 53 / 100);  // 2 bytes + ~40 per row of 768
  EXPECT_LE(i8.compact_bytes(), f32_bytes * 28 / 100);
  EXPECT_EQ(f32.compact_bytes(), f32_bytes);
  EXPECT_LE(bf16.max_relative_error(), 0x1p-8);
  EXPECT_LE(f16.max_relative_error(), 0x1p-11);
  EXPECT_GT(bf16.max_relative_error(), 0.0);
  EXPECT_EQ(f32.max_relative_error(), 0.0);
  EXPECT_EQ(f32.decoded_row(3), std::vector<float>(rows.row(3), rows.row(3) + 768));
  EXPECT_EQ(element_bytes(StorageType::I8), 1u);

  const test::TestMatrix q = test::random_rows(rng, 2, 768);
  EXPECT_THROW(engine.search(q.view(), bf16, 5), Error);  // exact without the f32 rows
  try {
    engine.search(q.view(), bf16, 5);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("keep_f32"), std::string::npos) << e.what();
  }
  const test::TestMatrix wrong = test::random_rows(rng, 2, 767);
  EXPECT_THROW(engine.search(wrong.view(), bf16, 5, Metric::Dot, ScoreMode::Fast), Error);
  EXPECT_THROW(engine.search(q.view(), bf16, CandidateView(wrong.view()), 5), Error);
  EXPECT_THROW(engine.search(q.view(), f32, 5, Metric::Dot, ScoreMode::Exact, Tier::Gpu), Error);
  EXPECT_THROW(engine.search(q.view(), f32, 5, Metric::Dot, ScoreMode::Exact, Tier::Fiber), Error);
  EXPECT_THROW(engine.search(q.view(), CompactSet(), 5), Error);
  EXPECT_THROW(bf16.decoded_row(1000), Error);
  EXPECT_EQ(engine.search(q.view(), bf16, 0, Metric::Dot, ScoreMode::Fast).k(), 0u);
  EXPECT_EQ(engine.search(q.view(), i8, 5000, Metric::Dot, ScoreMode::Fast).k(), 1000u);

  EXPECT_EQ(parse_storage_type("BF16"), StorageType::Bf16);
  EXPECT_EQ(parse_storage_type("int8"), StorageType::I8);
  EXPECT_THROW(parse_storage_type("f8"), Error);
  EXPECT_EQ(parse_score_mode("Fast"), ScoreMode::Fast);
  EXPECT_THROW(parse_score_mode("approximate"), Error);
  EXPECT_EQ(to_string(StorageType::F16), "f16");
  EXPECT_EQ(to_string(ScoreMode::Exact), "exact");
}

}  // namespace
}  // namespace hetcache
