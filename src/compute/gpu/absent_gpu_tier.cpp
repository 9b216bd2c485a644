#include <hetcache/error.hpp>

#include "compute/gpu/gpu_tier.hpp"

namespace hetcache::gpu {
namespace {

class AbsentGpuTier final : public GpuTier {
 public:
  explicit AbsentGpuTier(std::string reason) : reason_(std::move(reason)) {}
  bool available() const noexcept override { return false; }
  GpuStats stats() const override {
    GpuStats s;
    s.reason = reason_;
    return s;
  }
  std::optional<Hits> search(MatrixView, MatrixView, std::size_t, Metric, Precision) override {
    fail();
  }
  std::optional<Hits> search(MatrixView, const detail::DeviceRows&, std::size_t, Metric) override {
    fail();
  }
  std::shared_ptr<detail::DeviceRows> upload(MatrixView, Precision) override { fail(); }
  std::shared_ptr<detail::DeviceRows> allocate(std::size_t, std::size_t, Precision) override {
    fail();
  }
  void write_rows(detail::DeviceRows&, std::size_t, MatrixView) override { fail(); }
  Matrix download(const detail::DeviceRows&) override { fail(); }

 private:
  [[noreturn]] void fail() const {
    throw Error(ErrorCode::Unsupported, "tier gpu is not available: " + reason_);
  }
  std::string reason_;
};

}  // namespace

std::unique_ptr<GpuTier> make_absent_gpu_tier(std::string reason) {
  return std::make_unique<AbsentGpuTier>(std::move(reason));
}

}  // namespace hetcache::gpu
