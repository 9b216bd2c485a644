// hetcache_precision_bench: one run, the same random data, our f32 search against compact sets
// (f16; bf16 and int8 with vdpbf16ps / vpdpbusd where the CPU has them, and widened to f32) in
// exact and fast mode, with the machine's read bandwidth and f32 FMA peak measured in the run.
// Cosine (the default metric) over candidates whose norms are kept. Prints a markdown table.
//   hetcache_precision_bench [--quick] [--n N] [--dim D] [--q Q] [--runs R] [--out FILE]
// (--quick: N <= 100k, Q = 1 and 64, k = 10; --q: only that query count)
// Columns: median ms per search; "x f32" = f32 time / this time; "of read" = the compact bytes at
// the machine's read bandwidth / this time (Q = 1 is a pure scan); "same" = queries whose ids
// equal the f32 search's (exact mode must give all); "recall" = fast mode's recall@k against
// f32; "rescore" = the share of exact mode's time beyond fast mode's (the re-scoring).
#include <hetcache/hetcache.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench_data.hpp"
#include "machine_limits.hpp"
#if defined(HETCACHE_HAVE_DNNL)
#include "dnnl_peer.hpp"
#endif

namespace {

using hetcache::CompactSet;
using hetcache::Hits;
using hetcache::Matrix;
using hetcache::ScoreMode;
using hetcache::StorageType;

double recall(const Hits& want, const Hits& got) {
  std::size_t same = 0;
  for (std::size_t q = 0; q < want.num_queries(); ++q) {
    for (const auto id : got.ids(q)) {
      same += std::count(want.ids(q).begin(), want.ids(q).end(), id);
    }
  }
  return static_cast<double>(same) / static_cast<double>(want.num_queries() * want.k());
}

std::size_t same_queries(const Hits& want, const Hits& got) {
  std::size_t same = 0;
  for (std::size_t q = 0; q < want.num_queries(); ++q) {
    same += std::equal(want.ids(q).begin(), want.ids(q).end(), got.ids(q).begin()) ? 1 : 0;
  }
  return same;
}

struct Variant {
  std::string name;
  const hetcache::SimilarityEngine* engine;
  CompactSet set;
  double made_s = 0;  // compact_set's time: encoding and every row's bound
};

Variant make_variant(std::string name, const hetcache::SimilarityEngine& engine,
                     hetcache::MatrixView rows, StorageType type) {
  const auto start = std::chrono::steady_clock::now();
  CompactSet set = engine.compact_set(rows, type, /*keep_f32=*/false);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  return Variant{std::move(name), &engine, std::move(set), took.count()};
}

int run(int argc, char** argv) {
  bool quick = false;
  std::size_t n = 1000000, dim = 768, only_q = 0;
  int runs = 5;
  std::string out_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--n" && i + 1 < argc) {
      n = hetcache::bench::parse_size(argv[0], "--n", argv[++i], 1000, 100000000);
    } else if (a == "--dim" && i + 1 < argc) {
      dim = hetcache::bench::parse_size(argv[0], "--dim", argv[++i], 1, 65536);
    } else if (a == "--q" && i + 1 < argc) {
      only_q = hetcache::bench::parse_size(argv[0], "--q", argv[++i], 1, 4096);
    } else if (a == "--runs" && i + 1 < argc) {
      runs = static_cast<int>(hetcache::bench::parse_size(argv[0], "--runs", argv[++i], 1, 100));
    } else if (a == "--out" && i + 1 < argc) {
      out_path = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: hetcache_precision_bench [--quick] [--n N] [--dim D] [--q Q] [--runs R] "
                   "[--out FILE]\n");
      return 2;
    }
  }
  if (quick) n = std::min<std::size_t>(n, 100000);
  const std::vector<std::size_t> nqs = only_q != 0 ? std::vector<std::size_t>{only_q}
                                       : quick     ? std::vector<std::size_t>{1, 64}
                                                   : std::vector<std::size_t>{1, 16, 64, 256};
  const std::vector<std::size_t> ks =
      quick ? std::vector<std::size_t>{10} : std::vector<std::size_t>{10, 100};

  // The AVX-512 / AVX2 kernels whatever HETCACHE_AMX says; the AMX ones are their own rows.
  hetcache::SimilarityEngine engine(hetcache::SimilarityOptions{.amx_kernels = false});
  hetcache::SimilarityEngine amx(hetcache::SimilarityOptions{.amx_kernels = true});
  hetcache::SimilarityOptions widening_options;
  widening_options.quantize_queries = false;
  hetcache::SimilarityEngine widening(widening_options);
  const std::size_t threads = engine.cpu_threads();
  std::fprintf(stderr, "measuring machine limits...\n");
  const double bandwidth = hetcache::bench::measure_read_bandwidth(threads);
  const double peak = hetcache::bench::measure_fma_peak(threads);

  std::fprintf(stderr, "N=%zu d=%zu: data and sets\n", n, dim);
  // One f32 copy of the rows, shared: the compact sets keep none and exact mode re-scores from it.
  const hetcache::CandidateSet f32 =
      engine.candidate_set(hetcache::bench::random_matrix(n, dim, 1000 + dim, threads));
  const std::size_t max_q = *std::max_element(nqs.begin(), nqs.end());
  const Matrix queries = hetcache::bench::random_matrix(max_q, dim, 2000 + dim, threads);
  const hetcache::MatrixView rows = f32.matrix().view();
  std::vector<Variant> variants;
  variants.push_back(make_variant("f16", engine, rows, StorageType::F16));
  variants.push_back(make_variant("bf16", engine, rows, StorageType::Bf16));
  if (engine.isa() == hetcache::Isa::Avx512) {
    variants.push_back(make_variant("bf16 widened", widening, rows, StorageType::Bf16));
  }
  variants.push_back(make_variant("i8", engine, rows, StorageType::I8));
  for (const StorageType type : {StorageType::Bf16, StorageType::I8}) {
    if (amx.compact_kernels(type).substr(0, 4) == "amx-") {
      variants.push_back(make_variant(
          std::string(type == StorageType::Bf16 ? "bf16" : "i8") + " amx", amx, rows, type));
    }
  }
  // vpdpbusd: AVX512-VNNI on avx512, AVX-VNNI on avx2 (where the CPU has it; else the same kernel)
  if (engine.isa() != hetcache::Isa::Scalar) {
    variants.push_back(make_variant("i8 widened", widening, rows, StorageType::I8));
  }

#if defined(HETCACHE_HAVE_DNNL)
  std::fprintf(stderr, "oneDNN peer: bf16 copy of the rows\n");
  hetcache::bench::DnnlBf16Peer peer(rows);
  std::ostringstream peer_out;
  peer_out << "\n"
           << hetcache::bench::DnnlBf16Peer::version()
           << " bf16 matmul + top-k (the rows normalised and rounded to bf16 once; approximate, "
              "as fast mode), in the same interleaved rounds:\n\n| Q | k | f32 ms | oneDNN ms | "
              "x f32 | recall | our best compact exact ms |\n|---|---|---|---|---|---|---|\n";
#endif
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line,
                "CPU: %s, %zu threads, ISA %s. Read bandwidth %.1f GB/s, f32 FMA peak %.0f "
                "GFLOP/s (%s), both measured in this run. N = %zu, d = %zu, Cosine, median of "
                "%d interleaved runs.\n\n",
                hetcache::bench::cpu_model().c_str(), threads,
                std::string(hetcache::to_string(engine.isa())).c_str(), bandwidth / 1e9, peak / 1e9,
                hetcache::bench::fma_peak_isa(), n, dim, runs);
  out << line;
  out << "Made (compact_set: encoding and bounds, both threads):";
  for (const Variant& v : variants) {
    std::snprintf(line, sizeof line, " %s %.2f s,", v.name.c_str(), v.made_s);
    out << line;
  }
  out << " of " << static_cast<double>(n * dim * sizeof(float)) / 1e9 << " GB of f32 rows.\n";
  out << "Kernels:";
  for (const Variant& v : variants) {
    out << " " << v.name << " = " << v.engine->compact_kernels(v.set.type()) << ",";
  }
  out << " (AMX-BF16 " << (amx.compact_kernels(StorageType::Bf16) == "amx-bf16" ? "" : "not ")
      << "usable here).\n\n";
  out << "| Q | k | f32 ms | f32 of read / of peak | type | exact ms | x f32 | fast ms | x f32 "
         "| of read | same | recall | rescore |\n|---|---|---|---|---|---|---|---|---|---|---|"
         "---|---|\n";
  for (const std::size_t nq : nqs) {
    for (const std::size_t k : ks) {
      const hetcache::MatrixView q = queries.view().slice(0, nq);
      std::vector<std::function<void()>> systems;
      std::vector<Hits> results(1 + 2 * variants.size());
      systems.push_back([&] { results[0] = engine.search(q, f32, k, hetcache::Metric::Cosine); });
      for (std::size_t v = 0; v < variants.size(); ++v) {
        for (const ScoreMode mode : {ScoreMode::Exact, ScoreMode::Fast}) {
          const std::size_t slot = 1 + 2 * v + (mode == ScoreMode::Fast ? 1 : 0);
          systems.push_back([&, v, mode, slot] {
            const Variant& x = variants[v];
            results[slot] = mode == ScoreMode::Exact
                                ? x.engine->search(q, x.set, f32, k, hetcache::Metric::Cosine)
                                : x.engine->search(q, x.set, k, hetcache::Metric::Cosine, mode);
          });
        }
      }
#if defined(HETCACHE_HAVE_DNNL)
      Hits peer_hits;
      systems.push_back([&] { peer_hits = peer.search(q, k); });
#endif
      std::fprintf(stderr, "Q=%zu k=%zu\n", nq, k);
      const std::vector<double> t = hetcache::bench::interleaved_medians(runs, systems);
#if defined(HETCACHE_HAVE_DNNL)
      double best_exact = t[1];
      for (std::size_t v = 0; v < variants.size(); ++v)
        best_exact = std::min(best_exact, t[1 + 2 * v]);
      std::snprintf(line, sizeof line, "| %zu | %zu | %.1f | %.1f | %.2f | %.3f | %.1f |\n", nq, k,
                    t[0] * 1e3, t.back() * 1e3, t[0] / t.back(), recall(results[0], peer_hits),
                    best_exact * 1e3);
      peer_out << line;
#endif
      const double f32_bytes = static_cast<double>(n * dim * sizeof(float));
      const double flops = 2.0 * static_cast<double>(nq * n * dim);
      for (std::size_t v = 0; v < variants.size(); ++v) {
        const double exact = t[1 + 2 * v], fast = t[2 + 2 * v];
        const double bytes =
            static_cast<double>(n * dim * hetcache::element_bytes(variants[v].set.type()));
        std::snprintf(
            line, sizeof line,
            "| %zu | %zu | %.1f | %.0f%% / %.0f%% | %s | %.1f | %.2f | %.1f | %.2f | "
            "%.0f%% | %zu/%zu | %.3f | %.0f%% |\n",
            nq, k, t[0] * 1e3, 100 * f32_bytes / bandwidth / t[0], 100 * flops / peak / t[0],
            variants[v].name.c_str(), exact * 1e3, t[0] / exact, fast * 1e3, t[0] / fast,
            100 * bytes / bandwidth / fast, same_queries(results[0], results[1 + 2 * v]), nq,
            recall(results[0], results[2 + 2 * v]), 100 * std::max(0.0, exact - fast) / exact);
        out << line;
      }
    }
  }
  // The limits again after the sweep; the better readings are used (a reading in a slow moment of
  // a shared machine would flatter the ratios).
  const double bandwidth_after = hetcache::bench::measure_read_bandwidth(threads);
  const double peak_after = hetcache::bench::measure_fma_peak(threads);
  std::string report = out.str();
#if defined(HETCACHE_HAVE_DNNL)
  report += peer_out.str();
#endif
  std::snprintf(line, sizeof line,
                "\nLimits after the sweep: read %.1f GB/s, FMA peak %.0f GFLOP/s (the table uses "
                "the readings before: %.1f GB/s, %.0f GFLOP/s).\n",
                bandwidth_after / 1e9, peak_after / 1e9, bandwidth / 1e9, peak / 1e9);
  report += line;
  return hetcache::bench::print_report(report, out_path);
}

}  // namespace

int main(int argc, char** argv) {
  return hetcache::bench::guarded_main("hetcache_precision_bench", run, argc, argv);
}
