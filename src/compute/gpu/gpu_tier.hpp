// src/compute/gpu: the GPU tier as plain C++ sees it (no CUDA types): the interface below, and the
// absent tier for builds without CUDA or machines without a device. The CUDA implementation is
// src/compute/cuda/. A GpuTier is made once per Resources (runtime/resources_core.hpp); the engine
// and the cache's device mirror use that one.
#pragma once

#include <hetcache/error.hpp>
#include <hetcache/matrix.hpp>
#include <hetcache/similarity.hpp>

#include <memory>
#include <optional>
#include <string>

namespace hetcache {

// A candidate set in device memory. The deleters of `data` and `norms` free it on the device that
// holds it (and keep that device's context alive until then).
struct detail::DeviceRows {
  std::size_t rows = 0;
  std::size_t dim = 0;
  Precision precision = Precision::F32;
  std::size_t bytes = 0;
  std::shared_ptr<void> data;   // rows x dim elements of the precision's storage type, packed
  std::shared_ptr<void> norms;  // rows floats: squared L2 norm of each stored row
};

namespace gpu {

// The device ran out of memory (or the search out of its scratch budget): the work goes to the CPU.
class GpuOutOfMemory : public Error {
 public:
  explicit GpuOutOfMemory(const std::string& message) : Error(ErrorCode::GpuError, message) {}
};

class GpuTier {
 public:
  virtual ~GpuTier() = default;
  virtual bool available() const noexcept = 0;
  virtual GpuStats stats() const = 0;
  // Top-k of host-resident candidates, streamed to the device tile by tile in `precision`.
  // nullopt: the device ran out of memory (counted); the caller runs the CPU tier. Other failures
  // throw Error(GpuError).
  virtual std::optional<Hits> search(MatrixView queries, MatrixView candidates, std::size_t k,
                                     Metric metric, Precision precision) = 0;
  virtual std::optional<Hits> search(MatrixView queries, const detail::DeviceRows& candidates,
                                     std::size_t k, Metric metric) = 0;
  virtual std::shared_ptr<detail::DeviceRows> upload(MatrixView candidates,
                                                     Precision precision) = 0;
  // An uninitialised set of `rows` rows, written later by write_rows (the cache's device slabs).
  // Throws GpuOutOfMemory when the device has no room.
  virtual std::shared_ptr<detail::DeviceRows> allocate(std::size_t rows, std::size_t dim,
                                                       Precision precision) = 0;
  // Overwrites rows [first, first + rows.rows()) of the set (converted to its precision) and their
  // norms. Throws Error(InvalidArgument) past the end or for another dim.
  virtual void write_rows(detail::DeviceRows& set, std::size_t first, MatrixView rows) = 0;
  // The set back in f32 (the CPU fallback of a device-resident search).
  virtual Matrix download(const detail::DeviceRows& candidates) = 0;
};

// Never throws for a missing device: the tier then reports itself absent, with the reason.
std::unique_ptr<GpuTier> make_gpu_tier(const GpuOptions& options);

// The tier where there is none (no CUDA in the build, no device, or disabled by the options).
std::unique_ptr<GpuTier> make_absent_gpu_tier(std::string reason);

}  // namespace gpu
}  // namespace hetcache
