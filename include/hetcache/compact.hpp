#pragma once
// Candidate sets stored in fewer bytes per element (f16, bf16, int8), searched on the CPU tiers
// with answers identical to the f32 search (ScoreMode::Exact, the default) or ranked by the
// low-precision scores themselves (ScoreMode::Fast). Made by SimilarityEngine::compact_set.

#include <hetcache/candidates.hpp>
#include <hetcache/matrix.hpp>

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

namespace hetcache {
namespace detail {
struct CompactRows;  // the encoded rows and their error bounds (src/compute/cpu; not API)
}

// How a candidate set keeps its vectors.
//   F32  : 4 bytes per element (the rows as given).
//   F16  : IEEE half, 2 bytes; round to nearest even, |x| >= 65520 becomes infinity.
//   Bf16 : bfloat16, 2 bytes; round to nearest even, |x| < 2^-126 is stored as zero.
//   I8   : 1 byte per element and one f32 scale per row (max|x| / 127, symmetric); a row holding
//          NaN or infinity decodes as NaN.
// Every type keeps NaN as NaN (I8: the whole row).
enum class StorageType { F32, F16, Bf16, I8 };

// What a search over a compact set returns.
//   Exact : the f32 search's ids and scores, bit for bit, ties and NaN included. The compact rows
//           pick a candidate list that provably holds the f32 top-k (every candidate within its
//           worst-case error bound of the k-th best), and the list is re-scored from the f32 rows.
//   Fast  : the low-precision scores as they are (no f32 rows needed); recall is measured in
//           bench/results/precision-*.md.
enum class ScoreMode { Exact, Fast };

std::string_view to_string(StorageType type) noexcept;
std::string_view to_string(ScoreMode mode) noexcept;
// Parse "f32" / "f16" / "bf16" / "i8" (case-insensitive); throws Error(InvalidArgument) otherwise.
StorageType parse_storage_type(std::string_view text);
// Parse "exact" / "fast" (case-insensitive); throws Error(InvalidArgument) otherwise.
ScoreMode parse_score_mode(std::string_view text);
// Bytes of one element (I8 rows add a 4-byte scale).
std::size_t element_bytes(StorageType type) noexcept;

// A read-only candidate set in a compact storage type, searched many times. Copies share the
// rows (they are immutable). Holds, per row, the f32 squared norm and the error bounds exact mode
// needs (about 40 bytes), and the f32 rows themselves when made with keep_f32 = true.
class CompactSet {
 public:
  CompactSet() = default;

  StorageType type() const noexcept;
  std::size_t rows() const noexcept;
  std::size_t dim() const noexcept;
  // Bytes held for the compact rows and their per-row data, without the f32 rows.
  std::size_t compact_bytes() const noexcept;
  // The f32 rows exact mode re-scores from (empty when the set was made without them).
  CandidateView f32_rows() const noexcept;
  // Row i as stored, decoded to f32 (I8: scale * code).
  std::vector<float> decoded_row(std::size_t i) const;
  // The largest |c - c'| / |c| over the rows (c' the stored row), from the encoding: 0 for F32.
  double max_relative_error() const noexcept;
  bool empty() const noexcept { return rows_ == nullptr; }

 private:
  friend class SimilarityEngine;
  std::shared_ptr<const detail::CompactRows> rows_;
};

}  // namespace hetcache
