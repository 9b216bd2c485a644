// Benchmark peer: oneDNN's bf16 matmul (bf16 x bf16 -> f32, AVX512-BF16 / AMX where the CPU has
// them) followed by a top-k -- the "BLAS with bf16 plus top-k" a user could assemble instead of
// hetcache's compact sets. Approximate, as our fast mode: candidates and queries rounded to bf16.
// Built only where oneDNN is found (Debian's libdnnl-dev: scripts/deps.sh bench).
#pragma once

#include <hetcache/matrix.hpp>
#include <hetcache/similarity.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hetcache::bench {

class DnnlBf16Peer {
 public:
  // Cosine: the rows are normalised, then rounded to bf16 (round to nearest even), once.
  explicit DnnlBf16Peer(MatrixView candidates);
  ~DnnlBf16Peer();
  // Top-k by cosine (the queries normalised and rounded too); candidates in blocks of kBlockRows,
  // each block one matmul, its scores folded into per-query top-k lists on all threads.
  Hits search(MatrixView queries, std::size_t k);
  static std::string version();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace hetcache::bench
