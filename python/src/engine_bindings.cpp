// SimilarityEngine for Python: arrays in (read in place), (ids, scores) or a score matrix out
// (owning the C++ result), the GIL released while the kernels run.
#include <hetcache/candidates.hpp>
#include <hetcache/compact.hpp>
#include <hetcache/error.hpp>
#include <hetcache/similarity.hpp>

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>

#include <memory>
#include <optional>
#include <utility>

#include "arrays.hpp"
#include "bindings.hpp"

namespace hetcache::python {
namespace nb = nanobind;
using namespace nb::literals;

namespace {

nb::tuple hits_arrays(Hits hits) {
  const std::size_t q = hits.num_queries(), k = hits.k();
  auto held = std::make_shared<Hits>(std::move(hits));
  if (q * k == 0) {  // numpy arrays of no elements, over a pointer nobody reads
    static float no_score = 0;
    static std::int64_t no_id = 0;
    return nb::make_tuple(numpy_owning(held, &no_id, {q, k}),
                          numpy_owning(held, &no_score, {q, k}));
  }
  std::int64_t* ids = held->mutable_ids(0).data();
  float* scores = held->mutable_scores(0).data();
  return nb::make_tuple(numpy_owning(held, ids, {q, k}), numpy_owning(held, scores, {q, k}));
}

// Candidates as the engine reads them: a CandidateSet's aligned rows and kept norms, or an array
// read in place (`held` keeps the array's reference for the call).
CandidateView candidates_of(nb::handle obj, InMatrix& held) {
  CandidateSet* set = nullptr;
  if (nb::try_cast(obj, set, false) && set != nullptr) return set->view();
  held = as_matrix(obj, "candidates");
  return CandidateView(view_of(held));
}

}  // namespace

void bind_engine(nb::module_& m) {
  nb::class_<CandidateSet>(
      m, "CandidateSet",
      "Candidates searched many times (a flat index): rows copied once into 64-byte-aligned "
      "storage with each row's squared norm kept, so COSINE and L2 read the norm instead of "
      "computing it, and no row load spans two cache lines. Made by "
      "SimilarityEngine.candidate_set; read-only.")
      .def_prop_ro("rows", &CandidateSet::rows, "Number of candidates.")
      .def_prop_ro("dim", &CandidateSet::dim, "Floats per candidate.")
      .def_prop_ro(
          "array",
          [](nb::handle self) {
            const CandidateSet& set = nb::cast<const CandidateSet&>(self);
            const Matrix& rows = set.matrix();
            const auto stride = static_cast<std::int64_t>(rows.stride());
            static const float none = 0;
            return nb::ndarray<nb::numpy, const float>(
                rows.rows() * rows.dim() == 0 ? &none : rows.data(), {rows.rows(), rows.dim()},
                self, {stride, 1});
          },
          "The rows as a read-only numpy array (a view, no copy; rows padded to 64 bytes).");

  nb::class_<CompactSet>(
      m, "CompactSet",
      "Candidates stored as F16, BF16 or I8 (half or a quarter of the float32 bytes), made by "
      "SimilarityEngine.compact_set and searched by SimilarityEngine.search: EXACT mode (the "
      "default) returns the float32 search's ids and scores bit for bit, FAST mode the "
      "low-precision scores. Read-only.")
      .def_prop_ro("rows", &CompactSet::rows, "Number of candidates.")
      .def_prop_ro("dim", &CompactSet::dim, "Elements per candidate.")
      .def_prop_ro("type", &CompactSet::type, "The StorageType.")
      .def_prop_ro("compact_bytes", &CompactSet::compact_bytes,
                   "Bytes of the compact rows and their per-row data (without float32 rows).")
      .def_prop_ro(
          "keeps_f32",
          [](const CompactSet& s) { return !s.f32_rows().rows().empty() || s.rows() == 0; },
          "Whether the set kept a float32 copy for EXACT mode.")
      .def_prop_ro("max_relative_error", &CompactSet::max_relative_error,
                   "The largest |c - stored c| / |c| over the rows.")
      .def(
          "decoded_row",
          [](const CompactSet& s, std::int64_t i) {
            if (i < 0) {
              throw Error(ErrorCode::InvalidArgument,
                          "decoded_row: row " + std::to_string(i) + " is negative");
            }
            const std::vector<float> row = s.decoded_row(static_cast<std::size_t>(i));
            float* data = new float[row.size()];
            std::copy(row.begin(), row.end(), data);
            nb::capsule owner(data, [](void* p) noexcept { delete[] static_cast<float*>(p); });
            return nb::ndarray<nb::numpy, float, nb::ndim<1>>(data, {row.size()}, owner);
          },
          "i"_a, "Row i as stored, decoded to float32 (I8: scale * code).");

  nb::class_<SimilarityEngine>(
      m, "SimilarityEngine",
      "Batched similarity on the tier it is given (or placed by the fixed Hybrid rule): "
      "scores and top-k search over float32 arrays, read in place.")
      .def(
          "__init__",
          [](SimilarityEngine* self, std::optional<Isa> isa, Precision gpu_precision,
             bool quantize_queries, std::optional<bool> amx_kernels) {
            SimilarityOptions o;
            o.isa = isa;
            o.gpu_precision = gpu_precision;
            o.quantize_queries = quantize_queries;
            o.amx_kernels = amx_kernels;
            new (self) SimilarityEngine(std::move(o));
          },
          "isa"_a = nb::none(), "gpu_precision"_a = Precision::F32, "quantize_queries"_a = true,
          "amx_kernels"_a = nb::none(),
          "isa: the SIMD kernels to use (default: the best this CPU has; one it lacks raises "
          "UnsupportedError). gpu_precision: how the GPU tier multiplies (default F32). "
          "quantize_queries: search BF16 / I8 CompactSets in their own type where the CPU can "
          "(AVX512-BF16, AVX-512 VNNI or AVX-VNNI), rounding the queries to it too (default True). "
          "amx_kernels: with quantize_queries, search BF16 / I8 sets on the AMX tiles where the "
          "CPU has them (default None: the HETCACHE_AMX environment variable, off when unset; "
          "not yet run on AMX hardware).")
      .def_prop_ro("isa", &SimilarityEngine::isa, "The SIMD instruction set in use.")
      .def_prop_ro("amx_kernels", &SimilarityEngine::amx_kernels,
                   "Whether this engine asks for the AMX kernels (amx_kernels, resolved).")
      .def("compact_kernels", &SimilarityEngine::compact_kernels, "type"_a,
           "The kernels compact sets of this StorageType are searched with, e.g. 'avx512-bf16', "
           "'amx-bf16' (F32: the ISA's name).")
      .def_prop_ro("cpu_threads", &SimilarityEngine::cpu_threads,
                   "Threads of the CPU arena the Cpu tier runs on.")
      .def_prop_ro("gpu_available", &SimilarityEngine::gpu_available,
                   "Whether the GPU tier can run here.")
      .def(
          "gpu_stats",
          [](const SimilarityEngine& e) {
            const GpuStats s = e.gpu_stats();
            nb::dict d;
            d["available"] = s.available;
            d["device"] = s.device;
            d["reason"] = s.reason;
            d["searches"] = s.searches;
            d["oom_fallbacks"] = s.oom_fallbacks;
            d["tiles"] = s.tiles;
            d["bytes_to_device"] = s.bytes_to_device;
            return d;
          },
          "What the GPU tier did, and why it is absent when it is.")
      .def(
          "candidate_set",
          [](const SimilarityEngine& e, nb::handle candidates) {
            const InMatrix c = as_matrix(candidates, "candidates");
            nb::gil_scoped_release unlocked;
            return e.candidate_set(Matrix::copy_of(view_of(c)));
          },
          "candidates"_a,
          "A CandidateSet of these rows (copied once, norms computed once with this engine's "
          "kernels): search it as often as you like, with the same results as the array.")
      .def(
          "compact_set",
          [](const SimilarityEngine& e, nb::handle candidates, StorageType type, bool keep_f32) {
            const InMatrix c = as_matrix(candidates, "candidates");
            nb::gil_scoped_release unlocked;
            return e.compact_set(view_of(c), type, keep_f32);
          },
          "candidates"_a, "type"_a = StorageType::Bf16, "keep_f32"_a = true,
          "A CompactSet of these rows stored as `type` (default BF16). keep_f32 (default True) "
          "keeps a float32 copy for EXACT searches; without it, pass the rows as f32_rows.")
      .def(
          "search",
          [](const SimilarityEngine& e, nb::handle queries, nb::handle candidates, std::int64_t k,
             Metric metric, std::optional<Tier> tier, ScoreMode mode, nb::handle f32_rows) {
            const Queries q = queries_of(queries);
            const std::size_t kk = count_of(k, "k");
            CompactSet* compact = nullptr;
            if (nb::try_cast(candidates, compact, false) && compact != nullptr) {
              InMatrix f32_held;
              const bool given = !f32_rows.is_none();
              const CandidateView f32 = given ? candidates_of(f32_rows, f32_held) : CandidateView();
              Hits hits;
              {
                nb::gil_scoped_release unlocked;
                hits = given ? e.search(q.view(), *compact, f32, kk, metric, tier)
                             : e.search(q.view(), *compact, kk, metric, mode, tier);
              }
              return hits_arrays(std::move(hits));
            }
            if (!f32_rows.is_none()) {
              throw Error(ErrorCode::InvalidArgument,
                          "search: f32_rows goes with a CompactSet, not float32 candidates");
            }
            InMatrix held;
            const CandidateView c = candidates_of(candidates, held);
            Hits hits;
            {
              nb::gil_scoped_release unlocked;
              hits = e.search(q.view(), c, kk, metric, tier);
            }
            return hits_arrays(std::move(hits));
          },
          "queries"_a, "candidates"_a, "k"_a = 10, "metric"_a = Metric::Cosine,
          "tier"_a = nb::none(), "mode"_a = ScoreMode::Exact, "f32_rows"_a = nb::none(),
          "The k best candidates for each query: (ids, scores), int64 and float32 arrays of "
          "queries x min(k, candidates). Better score first (larger for DOT and COSINE, smaller "
          "for L2's squared distance), equal scores by lower id, NaN after every number. "
          "queries: rows x dim (one 1-D vector is one query); candidates: n x dim, or a "
          "CandidateSet, or a CompactSet (searched in `mode`; an EXACT search of a set made "
          "with keep_f32=False takes the float32 rows as f32_rows). float32 "
          "C-contiguous inputs are read in place, others converted once. The GIL is released "
          "while it runs.")
      .def(
          "scores",
          [](const SimilarityEngine& e, nb::handle queries, nb::handle candidates, Metric metric,
             std::optional<Tier> tier) {
            const Queries q = queries_of(queries);
            InMatrix held;
            const CandidateView c = candidates_of(candidates, held);
            Matrix out;
            {
              nb::gil_scoped_release unlocked;
              out = e.scores(q.view(), c, metric, tier);
            }
            const std::size_t rows = out.rows(), cols = out.dim();
            const auto stride = static_cast<std::int64_t>(out.stride());
            float* data = out.data();
            if (rows * cols == 0) {
              static float none = 0;
              return numpy_owning(std::move(out), &none, {rows, cols});
            }
            return numpy_owning(std::move(out), data, {rows, cols}, {stride, 1});
          },
          "queries"_a, "candidates"_a, "metric"_a = Metric::Dot, "tier"_a = nb::none(),
          "Every score: a float32 array of queries x candidates (squared distances for L2), "
          "computed in place of the returned array (rows padded to 64 bytes; the array is a view "
          "of that buffer, no copy). The GIL is released while it runs.");
}

}  // namespace hetcache::python
