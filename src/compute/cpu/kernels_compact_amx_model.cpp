// The AMX compact-set kernels of kernels_compact_amx.cpp run over amx_model.inl's software model
// of the tile instructions instead of the instructions: for the tests only (compact_abi.hpp), so
// the kernels' tile logic is checked on every CPU with AVX512-BF16 and AVX512-VNNI (the kernels
// they hand small parts to), AMX or not. Compiled with the AVX-512 flags.
#include "compute/cpu/immintrin_avx512.hpp"

#include <cstring>

#include "compute/cpu/compact_abi.hpp"

namespace hetcache::cpu {
namespace {

#include "compute/cpu/simd_avx512.inl"

#include "compute/cpu/tile_driver.inl"

#include "compute/cpu/compact_driver.inl"

#include "compute/cpu/amx_driver.inl"

#include "compute/cpu/amx_model.inl"

void model_bf16_offer_block(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                            std::size_t c1, SurvivorList* lists) {
  amx_offer_block<AmxModel, ElementKind::Bf16>(p, q0, q1, c0, c1, lists, kAvx512Bf16CompactKernels);
}

void model_i8_offer_block(const CompactProblem& p, std::size_t q0, std::size_t q1, std::size_t c0,
                          std::size_t c1, SurvivorList* lists) {
  amx_offer_block<AmxModel, ElementKind::I8>(p, q0, q1, c0, c1, lists, kAvx512VnniCompactKernels);
}

}  // namespace

extern const CompactKernelTable kAmxModelBf16CompactKernels = {
    "amx-bf16-model", QueryCoding::Bf16, &model_bf16_offer_block, &encode_rows<Simd>,
    &decode_row<Simd>};
extern const CompactKernelTable kAmxModelI8CompactKernels = {"amx-int8-model", QueryCoding::U8,
                                                             &model_i8_offer_block,
                                                             &encode_rows<Simd>, &decode_row<Simd>};

}  // namespace hetcache::cpu
