// The AMX compact kernels (amx_driver.inl): run over the software model of the tile instructions
// on every CPU with AVX512-BF16 / AVX512-VNNI, and over the instructions where the CPU has AMX.
// Every candidate's key of a query range against the f64 sum of the coded values (bf16) or bit
// for bit against the vpdpbusd kernel (int8, whose int32 sums are exact); exact mode against the
// f32 search on data that stresses its candidate list; HETCACHE_AMX's values.
#include <hetcache/hetcache.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "compact_data.hpp"
#include "compute/cpu/compact_abi.hpp"
#include "compute/cpu/compact_rows.hpp"
#include "compute/cpu/cpu_tiers.hpp"
#include "compute/cpu/isa.hpp"
#include "reference.hpp"

namespace hetcache {
namespace {

using cpu::ElementKind;

#if defined(HETCACHE_X86_KERNELS)

struct AmxTable {
  const cpu::CompactKernelTable* table;
  StorageType type;
};

// Every table needs the AVX-512 kernel it hands few queries to; the instructions' tables need AMX
// too. Each one missing is named.
std::vector<AmxTable> amx_tables() {
  struct Candidate {
    bool runs;
    AmxTable table;
    const char* missing;
  };
  const Candidate all[] = {{cpu::cpu_has_avx512_bf16(),
                            {&cpu::kAmxModelBf16CompactKernels, StorageType::Bf16},
                            "no AVX512-BF16 on this CPU: the AMX-BF16 model is not run"},
                           {cpu::cpu_has_avx512_vnni(),
                            {&cpu::kAmxModelI8CompactKernels, StorageType::I8},
                            "no AVX512-VNNI on this CPU: the AMX-INT8 model is not run"},
                           {cpu::cpu_has_amx_bf16() && cpu::cpu_has_avx512_bf16(),
                            {&cpu::kAmxBf16CompactKernels, StorageType::Bf16},
                            "no AMX-BF16 for this process: tdpbf16ps is not run (model only)"},
                           {cpu::cpu_has_amx_int8() && cpu::cpu_has_avx512_vnni(),
                            {&cpu::kAmxI8CompactKernels, StorageType::I8},
                            "no AMX-INT8 for this process: tdpbsud is not run (model only)"}};
  std::vector<AmxTable> out;
  for (const Candidate& c : all) {
    if (c.runs) {
      out.push_back(c.table);
    } else {
      std::printf("[ note ] %s\n", c.missing);
    }
  }
  return out;
}

// The queries coded as the kernel reads them (QueryTerms in compact_search.cpp): rows of
// (dim + 63) / 64 * 64 zero-padded elements; U8 codes + 128 with a per-query scale.
struct CodedQueries {
  std::vector<unsigned char> codes;
  std::size_t stride = 0;
  std::vector<float> scale;
};

CodedQueries code_queries(const test::TestMatrix& q, cpu::QueryCoding coding) {
  CodedQueries out;
  const std::size_t bytes = coding == cpu::QueryCoding::Bf16 ? 2 : 1;
  out.stride = (q.dim + 63) / 64 * 64;
  out.codes.assign(q.rows * out.stride * bytes, 0);
  out.scale.assign(q.rows, 0.0f);
  for (std::size_t r = 0; r < q.rows; ++r) {
    unsigned char* row = out.codes.data() + r * out.stride * bytes;
    if (coding == cpu::QueryCoding::Bf16) {
      cpu::encode_row_reference<ElementKind::Bf16>(q.row(r), q.dim, row, nullptr);
    } else {
      cpu::encode_row_reference<ElementKind::I8>(q.row(r), q.dim, row, &out.scale[r]);
      for (std::size_t i = 0; i < q.dim; ++i) {
        row[i] = static_cast<unsigned char>(static_cast<signed char>(row[i]) + 128);
      }
    }
  }
  return out;
}

// Every key the table offers for queries [q0, q1) x rows [c0, c1) in fast mode, Dot (nothing is
// dropped: k is larger than the rows), as keys[(q - q0) * rows + id].
std::vector<float> all_keys(const cpu::CompactKernelTable& table, const detail::CompactRows& set,
                            const test::TestMatrix& queries, const CodedQueries& coded,
                            std::size_t q0, std::size_t q1, std::size_t c0, std::size_t c1) {
  const cpu::CompactProblem p{cpu::rows_of(queries.view()),
                              coded.codes.data(),
                              coded.stride,
                              coded.scale.data(),
                              set.kernel_rows(),
                              cpu::MetricKind::Dot,
                              nullptr,
                              nullptr,
                              false,
                              cpu::SlackRows{nullptr, nullptr, nullptr},
                              nullptr,
                              nullptr,
                              nullptr};
  std::vector<std::vector<cpu::Survivor>> storage(q1 - q0);
  std::vector<cpu::SurvivorList> lists;
  for (auto& s : storage) {
    s.resize(set.rows + 1);
    lists.push_back(cpu::SurvivorList{s.data(), 0, s.size(), set.rows + 1,
                                      -std::numeric_limits<float>::infinity(), &s});
  }
  table.offer_block(p, q0, q1, c0, c1, lists.data());
  std::vector<float> keys((q1 - q0) * set.rows, std::numeric_limits<float>::quiet_NaN());
  for (std::size_t q = q0; q < q1; ++q) {
    const cpu::SurvivorList& l = lists[q - q0];
    EXPECT_EQ(l.size, c1 - c0) << table.name << " query " << q << ": every row is offered once";
    for (std::size_t i = 0; i < l.size; ++i) {
      const auto id = static_cast<std::size_t>(l.entries[i].id);
      EXPECT_TRUE(id >= c0 && id < c1) << table.name << " offered row " << id;
      if (id < set.rows) keys[(q - q0) * set.rows + id] = l.entries[i].key;
    }
  }
  return keys;
}

std::shared_ptr<const detail::CompactRows> make_set(const cpu::CompactKernelTable& table,
                                                    const test::TestMatrix& rows,
                                                    StorageType type) {
  std::vector<float> norms(rows.rows);
  cpu::kernels_for(Isa::Avx512).squared_norms(cpu::rows_of(rows.view()), norms.data());
  return cpu::make_compact_rows(table, nullptr, 1, rows.view(), Matrix::copy_of(rows.view()),
                                std::move(norms), type);
}

// Query ranges starting past 0, a last group of 16 with padded columns, row ranges starting and
// ending inside a tile, and ones ending at the set's last row (the zero-padded copy); dims with a
// last 64-byte chunk partly padding.
TEST(AmxKernels, EveryKeyOfAQueryRangeAgainstTheCodedValues) {
  const auto tables = amx_tables();
  if (tables.empty()) GTEST_SKIP() << "no AMX kernel can run on this CPU (see the notes)";
  std::mt19937_64 rng(test::test_seed());
  for (const std::size_t dim : {32, 83, 256, 300}) {
    test::TestMatrix rows = test::stress_rows(rng, 1037, dim, true);
    // The last row (zero in stress_rows) is read through the zero-padded copy: make it count.
    for (std::size_t i = 0; i < dim; ++i) rows.row(rows.rows - 1)[i] = 0.5f;
    const test::TestMatrix queries = test::stress_queries(rng, rows, 45);
    for (const AmxTable& t : tables) {
      const auto set = make_set(*t.table, rows, t.type);
      const CodedQueries coded = code_queries(queries, t.table->query_coding);
      struct Range {
        std::size_t q0, q1, c0, c1;
      };
      for (const Range r : {Range{0, 16, 0, 1037}, Range{3, 40, 5, 1037}, Range{9, 45, 17, 998},
                            Range{0, 8, 700, 1037}}) {
        const std::string where = std::string(t.table->name) + " dim " + std::to_string(dim) +
                                  " queries " + std::to_string(r.q0) + "-" + std::to_string(r.q1) +
                                  " rows " + std::to_string(r.c0) + "-" + std::to_string(r.c1) +
                                  " seed " + std::to_string(test::test_seed());
        const std::vector<float> got =
            all_keys(*t.table, *set, queries, coded, r.q0, r.q1, r.c0, r.c1);
        if (t.type == StorageType::I8) {
          // Exact int32 sums: the vpdpbusd kernel's keys bit for bit.
          const std::vector<float> want = all_keys(cpu::kAvx512VnniCompactKernels, *set, queries,
                                                   coded, r.q0, r.q1, r.c0, r.c1);
          for (std::size_t i = 0; i < got.size(); ++i) {
            ASSERT_TRUE(test::bits_of(got[i]) == test::bits_of(want[i]) ||
                        (std::isnan(got[i]) && std::isnan(want[i])))
                << where << " key " << i << ": " << got[i] << " vs " << want[i];
          }
          continue;
        }
        // bf16: the f64 sum of the coded products, within two roundings a product and the
        // flushing term (compact_rows.hpp's dot_rounding_bound and QueryTerms' absolute term).
        const auto* qcodes = reinterpret_cast<const std::uint16_t*>(coded.codes.data());
        for (std::size_t q = r.q0; q < r.q1; ++q) {
          for (std::size_t c = r.c0; c < r.c1; ++c) {
            double sum = 0.0, abs_sum = 0.0;
            for (std::size_t i = 0; i < dim; ++i) {
              const double prod =
                  static_cast<double>(cpu::float_from_bf16(qcodes[q * coded.stride + i])) *
                  cpu::stored_value(*set, c, i);
              sum += prod;
              abs_sum += std::fabs(prod);
            }
            const float key = got[(q - r.q0) * set->rows + c];
            if (std::isnan(sum) || std::isinf(sum)) {
              ASSERT_TRUE(std::isnan(key) || std::isinf(key))
                  << where << " row " << c << ": " << key;
              continue;
            }
            const double bound =
                cpu::dot_rounding_bound(dim) * abs_sum + static_cast<double>(dim) * 0x1p-124;
            ASSERT_LE(std::fabs(key - sum), bound)
                << where << " query " << q << " row " << c << ": " << key << " vs " << sum;
          }
        }
      }
    }
  }
}

// Exact mode through compact_search: the f32 search's ids and score bits, every metric, query
// counts under the tiles' minimum (the AVX-512 kernel), one group, and groups with padding.
TEST(AmxKernels, ExactModeGivesTheF32Hits) {
  const auto tables = amx_tables();
  if (tables.empty()) GTEST_SKIP() << "no AMX kernel can run on this CPU (see the notes)";
  std::mt19937_64 rng(test::test_seed());
  const SimilarityEngine engine(SimilarityOptions{.isa = Isa::Avx512});
  for (const std::size_t dim : {83, 256}) {
    const test::TestMatrix rows = test::stress_rows(rng, 1500, dim, true);
    const CandidateSet f32 = engine.candidate_set(Matrix::copy_of(rows.view()));
    for (const std::size_t nq : {5, 16, 23, 40}) {
      const test::TestMatrix queries = test::stress_queries(rng, rows, nq);
      for (const AmxTable& t : tables) {
        const auto set = make_set(*t.table, rows, t.type);
        for (const Metric metric : {Metric::Dot, Metric::Cosine, Metric::L2}) {
          for (const std::size_t k : {1, 10, 100}) {
            const cpu::CompactSearchContext context{
                *set, cpu::kernels_for(Isa::Avx512),       *t.table, nullptr,
                1,    CandidateView(set->f32_rows.view()), set->rows};
            const Hits got =
                cpu::compact_search(context, queries.view(), k, metric, ScoreMode::Exact);
            const Hits want = engine.search(queries.view(), f32, k, metric, Tier::Sequential);
            test::expect_same_hits(want, got,
                                   std::string(t.table->name) + " dim " + std::to_string(dim) +
                                       " queries " + std::to_string(nq) + " " +
                                       std::string(to_string(metric)) + " k=" + std::to_string(k) +
                                       " seed " + std::to_string(test::test_seed()));
          }
        }
      }
    }
  }
}

#endif  // HETCACHE_X86_KERNELS

// Run by ctest with HETCACHE_AMX unset, 1 and bogus (tests/CMakeLists.txt): the value is the
// engines' default (1: the AMX kernels where this process has AMX, else the AVX-512 ones, with
// the f32 hits either way); a value other than 0 or 1 is an error that names it.
TEST(AmxEnvironment, ValueIsUsedOrRejected) {
  const char* value = std::getenv("HETCACHE_AMX");
  const std::string setting = value == nullptr ? "" : value;
  if (setting == "bogus") {
    for (int attempt = 0; attempt < 2; ++attempt) {  // stays an error
      try {
        const SimilarityEngine engine;
        FAIL() << "HETCACHE_AMX=bogus accepted";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find("bogus"), std::string::npos) << e.what();
      }
    }
    // An engine told what to do does not read it.
    EXPECT_FALSE(SimilarityEngine(SimilarityOptions{.amx_kernels = false}).amx_kernels());
    return;
  }
  std::mt19937_64 rng(test::test_seed());
  const test::TestMatrix rows = test::random_rows(rng, 700, 96);
  const test::TestMatrix queries = test::random_rows(rng, 20, 96);
  const SimilarityEngine engine;
  EXPECT_EQ(engine.amx_kernels(), setting == "1");
  const bool amx_runs = setting == "1" && engine.isa() == Isa::Avx512 &&
                        cpu::cpu_has_avx512_bf16() && cpu::cpu_has_amx_bf16();
  EXPECT_EQ(engine.compact_kernels(StorageType::Bf16) == "amx-bf16", amx_runs)
      << engine.compact_kernels(StorageType::Bf16);
  const CandidateSet f32 = engine.candidate_set(Matrix::copy_of(rows.view()));
  for (const StorageType type : {StorageType::Bf16, StorageType::I8}) {
    const CompactSet set = engine.compact_set(rows.view(), type);
    test::expect_same_hits(engine.search(queries.view(), f32, 10, Metric::Cosine),
                           engine.search(queries.view(), set, 10, Metric::Cosine),
                           "HETCACHE_AMX=" + setting + " " + std::string(to_string(type)) + " on " +
                               std::string(engine.compact_kernels(type)));
  }
}

}  // namespace
}  // namespace hetcache
