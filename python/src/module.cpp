// hetcache._core: the vocabulary (Metric, Tier, Strategy, Precision, StorageType, ScoreMode, Isa), errors, content keys,
// the SimilarityEngine and the EmbeddingCache. The package hetcache (python/hetcache) re-exports
// it and adds what is written in Python (asyncio forms, the embeddings adapter, Dask).
#include <hetcache/hetcache.hpp>

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>

#include "bindings.hpp"

namespace nb = nanobind;
using namespace nb::literals;

NB_MODULE(_core, m) {
  m.doc() = "hetcache's C++ core; import hetcache, not this module.";
  m.attr("__version__") = HETCACHE_PYTHON_VERSION;

  nb::enum_<hetcache::Metric>(m, "Metric", "How two vectors are compared.")
      .value("DOT", hetcache::Metric::Dot, "Inner product; larger is better.")
      .value("COSINE", hetcache::Metric::Cosine,
             "Dot of the normalised vectors; larger is better; a zero vector scores 0.")
      .value("L2", hetcache::Metric::L2, "Squared Euclidean distance; smaller is better.");
  nb::enum_<hetcache::Tier>(m, "Tier", "Where work runs.")
      .value("SEQUENTIAL", hetcache::Tier::Sequential, "The calling thread.")
      .value("FIBER", hetcache::Tier::Fiber, "The fiber pool (I/O-style cache work).")
      .value("CPU", hetcache::Tier::Cpu, "The oneTBB arena: all cores, SIMD kernels.")
      .value("GPU", hetcache::Tier::Gpu, "cuBLAS on the GPU.");
  nb::enum_<hetcache::Strategy>(m, "Strategy", "How a cache or engine places its operations.")
      .value("FIBER_ONLY", hetcache::Strategy::FiberOnly, "Cache I/O on fibers, compute on one thread.")
      .value("CPU_ONLY", hetcache::Strategy::CpuOnly, "Everything on the TBB arena.")
      .value("GPU_ONLY", hetcache::Strategy::GpuOnly, "Similarity on the GPU when there is one.")
      .value("HYBRID", hetcache::Strategy::Hybrid,
             "Fixed thresholds: small work where it is, I/O on fibers, compute on the arena or GPU.")
      .value("ADAPTIVE", hetcache::Strategy::Adaptive,
             "A cost model calibrated on this machine and corrected by what runs.");
  nb::enum_<hetcache::Precision>(m, "Precision", "How the GPU tier multiplies.")
      .value("F32", hetcache::Precision::F32)
      .value("TF32", hetcache::Precision::Tf32)
      .value("BF16", hetcache::Precision::Bf16)
      .value("F16", hetcache::Precision::F16);
  nb::enum_<hetcache::StorageType>(m, "StorageType", "How a CompactSet keeps its vectors.")
      .value("F32", hetcache::StorageType::F32, "4 bytes per element.")
      .value("F16", hetcache::StorageType::F16, "IEEE half, 2 bytes (|x| >= 65520: infinity).")
      .value("BF16", hetcache::StorageType::Bf16, "bfloat16, 2 bytes (|x| < 2^-126: zero).")
      .value("I8", hetcache::StorageType::I8, "1 byte and one f32 scale per row (max|x| / 127).");
  nb::enum_<hetcache::ScoreMode>(m, "ScoreMode", "What a search over a CompactSet returns.")
      .value("EXACT", hetcache::ScoreMode::Exact,
             "The f32 search's ids and scores, bit for bit (re-scored from the f32 rows).")
      .value("FAST", hetcache::ScoreMode::Fast, "The low-precision scores as they are.");
  nb::enum_<hetcache::Isa>(m, "Isa", "The SIMD instruction set of the CPU kernels.")
      .value("SCALAR", hetcache::Isa::Scalar)
      .value("AVX2", hetcache::Isa::Avx2)
      .value("AVX512", hetcache::Isa::Avx512);

  hetcache::python::bind_errors(m);

  m.def(
      "content_key",
      [](std::string_view model, std::string_view text, std::size_t dim) {
        return hetcache::content_key(model, dim, text);
      },
      "model"_a, "text"_a, "dim"_a,
      "A stable key for (model, text) in a cache of dimension dim: XXH3-128 over the model id, "
      "dim, dtype and text, as 32 hex digits (EmbeddingCache.content_key without the cache).");
  m.def("best_supported_isa", &hetcache::best_supported_isa,
        "The best SIMD instruction set this CPU and OS support.");

  hetcache::python::bind_engine(m);
  hetcache::python::bind_cache(m);
}
