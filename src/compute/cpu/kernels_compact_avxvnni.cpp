// AVX-VNNI compact-set kernel for int8 rows on CPUs with AVX2 (the VEX-encoded vpdpbusd of Alder
// Lake and later, Zen 5): 32 unsigned x signed byte pairs per instruction into 8 int32 sums,
// exactly, with the AVX-512 VNNI kernel's coding (vnni_tile.inl). Compiled with the AVX2 flags and
// -mavxvnni; used only where the CPU reports AVX-VNNI.
#include <immintrin.h>

#include <cstring>

#include "compute/cpu/compact_abi.hpp"

namespace hetcache::cpu {
namespace {

#include "compute/cpu/simd_avx2.inl"

#include "compute/cpu/tile_driver.inl"

#include "compute/cpu/compact_driver.inl"

#include "compute/cpu/vnni_tile.inl"

struct AvxVnniOps {
  using I = __m256i;
  static constexpr std::size_t kBytes = 32;
  static I zero() { return _mm256_setzero_si256(); }
  static I load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static I load_tail(const void* p, std::size_t n) {
    alignas(32) unsigned char buffer[32] = {};
    std::memcpy(buffer, p, n);
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(buffer));
  }
  static I dpbusd(I acc, I u, I s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
  static std::int32_t sum(I v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
  }
  // A full 2 x 4 tile reduced as one vector (Simd::reduce_tile's tree in int32 adds) rather
  // than eight horizontal sums of ~6 instructions: at d = 384 the products are 12 steps of 14.
  static constexpr bool kTileSums = true;
  static __m256 tile_sums(const I* acc, const std::int32_t* code_sums) {
    const __m256i sums = Simd::reduce_tile_by(
        acc, [](I a, I b) { return _mm256_hadd_epi32(a, b); },
        [](I a, I b) { return _mm256_add_epi32(a, b); });
    const __m256i offsets = _mm256_slli_epi32(
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code_sums))),
        7);
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(sums, offsets));
  }
};

void avx_vnni_offer_block(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                          std::size_t c1, SurvivorList* lists) {
  offer_block_metric<Simd, VnniTile<AvxVnniOps, Simd::kTileN>>(p, q0, q1, c0, c1, lists);
}

}  // namespace

extern const CompactKernelTable kAvxVnniCompactKernels = {
    "avx-vnni", QueryCoding::U8, &avx_vnni_offer_block, &encode_rows<Simd>, &decode_row<Simd>};

}  // namespace hetcache::cpu
