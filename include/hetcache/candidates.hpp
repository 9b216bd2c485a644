#pragma once
// Candidate vectors with each row's squared L2 norm kept beside them, so Cosine (the default
// metric) and L2 read |c| instead of computing it on every search.
//
// A plain MatrixView is searched as well: the engine then computes each candidate's norm as it
// scans, a cache block at a time, so no row is read from memory twice; what a kept norm saves is
// that arithmetic (one multiply-add per element of every candidate, per search).

#include <hetcache/matrix.hpp>

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

namespace hetcache {

// Non-owning: candidate rows and, optionally, their squared norms (both owned elsewhere).
class CandidateView {
 public:
  CandidateView() = default;
  // Without norms: a search computes them from the rows as it scans.
  explicit CandidateView(MatrixView rows) : rows_(rows) {}
  // squared_norms[i] = |rows.row(i)|^2, as SimilarityEngine::squared_norms computes it (scores
  // are then bit-identical to a search of the rows alone on that engine's ISA; norms from
  // elsewhere give scores within rounding of those). Throws Error(InvalidArgument) naming both
  // sizes when squared_norms.size() != rows.rows().
  CandidateView(MatrixView rows, std::span<const float> squared_norms);

  MatrixView rows() const noexcept { return rows_; }
  // Empty when the norms are computed during the scan.
  std::span<const float> squared_norms() const noexcept { return squared_norms_; }
  // Rows [first, first + count) with their norms; throws InvalidArgument when out of range.
  CandidateView slice(std::size_t first, std::size_t count) const;

 private:
  MatrixView rows_;
  std::span<const float> squared_norms_;
};

// Owning: a read-only candidate set searched many times (a FAISS user's flat index). Made by
// SimilarityEngine::candidate_set, which computes the norms once with the engine's ISA; moving
// the rows in copies nothing.
class CandidateSet {
 public:
  CandidateSet() = default;
  CandidateSet(CandidateSet&&) noexcept = default;
  CandidateSet& operator=(CandidateSet&&) noexcept = default;

  std::size_t rows() const noexcept { return rows_.rows(); }
  std::size_t dim() const noexcept { return rows_.dim(); }
  const Matrix& matrix() const noexcept { return rows_; }
  std::span<const float> squared_norms() const noexcept { return squared_norms_; }
  CandidateView view() const { return CandidateView(rows_.view(), squared_norms_); }
  operator CandidateView() const { return view(); }

 private:
  friend class SimilarityEngine;
  CandidateSet(Matrix rows, std::vector<float> squared_norms)
      : rows_(std::move(rows)), squared_norms_(std::move(squared_norms)) {}
  Matrix rows_;
  std::vector<float> squared_norms_;
};

}  // namespace hetcache
