// Portable kernels: plain C++ compiled for the baseline target (no intrinsics). Eight partial
// sums per pair keep the error low and let the compiler use whatever SIMD the baseline allows.
#include "compute/cpu/kernel_abi.hpp"

namespace hetcache::cpu {
namespace {

struct Simd {
  struct V {
    float lane[8];
  };
  static constexpr std::size_t kWidth = 8;
  static constexpr int kTileQ = 2;
  static constexpr int kTileN = 2;
  static constexpr bool kVectorTile = false;

  static V zero() {
    V v;
    for (float& x : v.lane) x = 0.0f;
    return v;
  }
  static V load(const float* p) {
    V v;
    for (std::size_t i = 0; i < kWidth; ++i) v.lane[i] = p[i];
    return v;
  }
  static V load_partial(const float* p, std::size_t n) {
    V v = zero();
    for (std::size_t i = 0; i < n; ++i) v.lane[i] = p[i];
    return v;
  }
  static V fmadd(V a, V b, V acc) {
    for (std::size_t i = 0; i < kWidth; ++i) acc.lane[i] = acc.lane[i] + a.lane[i] * b.lane[i];
    return acc;
  }
  static float hsum(V v) {
    const float s0 = v.lane[0] + v.lane[4], s1 = v.lane[1] + v.lane[5];
    const float s2 = v.lane[2] + v.lane[6], s3 = v.lane[3] + v.lane[7];
    return (s0 + s2) + (s1 + s3);
  }
};

#include "compute/cpu/tile_driver.inl"

}  // namespace

extern const KernelTable kScalarKernels = make_kernel_table<Simd>("scalar");

}  // namespace hetcache::cpu
