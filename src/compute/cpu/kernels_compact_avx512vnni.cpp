// AVX-512 VNNI compact-set kernel for int8 rows: vpdpbusd multiplies 64 unsigned x signed byte
// pairs per instruction into 16 int32 sums, four times the multiply-adds of an f32 FMA, exactly.
// The queries are int8 codes too (scale = max|q| / 127, as the rows), stored + 128 so they are
// unsigned: sum (q + 128) c = sum q c + 128 sum c, and the row's code sum takes the 128 back out
// (vnni_tile.inl). |sum| <= 255 * 127 * dim fits int32 for dim <= 65536. The slack carries
// |q - q'|. Compiled with the AVX-512 flags and -mavx512vnni; used only where the CPU reports
// AVX512-VNNI.
#include "compute/cpu/immintrin_avx512.hpp"

#include "compute/cpu/compact_abi.hpp"

namespace hetcache::cpu {
namespace {

#include "compute/cpu/simd_avx512.inl"

#include "compute/cpu/tile_driver.inl"

#include "compute/cpu/compact_driver.inl"

#include "compute/cpu/vnni_tile.inl"

struct Avx512VnniOps {
  using I = __m512i;
  static constexpr std::size_t kBytes = 64;
  static I zero() { return _mm512_setzero_si512(); }
  static I load(const void* p) { return _mm512_loadu_si512(p); }
  static I load_tail(const void* p, std::size_t n) {
    return _mm512_maskz_loadu_epi8((~std::uint64_t{0}) >> (64 - n), p);
  }
  static I dpbusd(I acc, I u, I s) { return _mm512_dpbusd_epi32(acc, u, s); }
  static std::int32_t sum(I v) { return _mm512_reduce_add_epi32(v); }
  static constexpr bool kTileSums = true;
  static __m512 tile_sums(const I* acc, const std::int32_t* code_sums) {
    __m512 bits[Simd::kTileQ * Simd::kTileN];
    for (int i = 0; i < Simd::kTileQ * Simd::kTileN; ++i) bits[i] = _mm512_castsi512_ps(acc[i]);
    const __m512i sums = _mm512_castps_si512(Simd::reduce_tile_by(bits, [](__m512 a, __m512 b) {
      return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
    }));
    const __m512i offsets = _mm512_slli_epi32(
        _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code_sums))), 7);
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(sums, offsets));
  }
};

void vnni_offer_block(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                      std::size_t c1, SurvivorList* lists) {
  offer_block_metric<Simd, VnniTile<Avx512VnniOps, Simd::kTileN>>(p, q0, q1, c0, c1, lists);
}

}  // namespace

extern const CompactKernelTable kAvx512VnniCompactKernels = {
    "avx512-vnni", QueryCoding::U8, &vnni_offer_block, &encode_rows<Simd>, &decode_row<Simd>};

}  // namespace hetcache::cpu
