#include "dnnl_peer.hpp"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <utility>

namespace hetcache::bench {
namespace {

constexpr std::size_t kBlockRows = 65536;

std::uint16_t to_bf16(float x) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &x, sizeof bits);
  bits += 0x7FFFu + ((bits >> 16) & 1u);  // round to nearest even (finite inputs)
  return static_cast<std::uint16_t>(bits >> 16);
}

// Row r of m, normalised and rounded, into out (dim values).
void normalised_bf16(MatrixView m, std::size_t r, std::uint16_t* out) {
  const float* row = m.row(r);
  double sq = 0;
  for (std::size_t i = 0; i < m.dim(); ++i) sq += static_cast<double>(row[i]) * row[i];
  const float inv = sq > 0 ? static_cast<float>(1.0 / std::sqrt(sq)) : 0.0f;
  for (std::size_t i = 0; i < m.dim(); ++i) out[i] = to_bf16(row[i] * inv);
}

}  // namespace

struct DnnlBf16Peer::State {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::size_t rows = 0, dim = 0;
  std::vector<std::uint16_t> candidates;  // rows x dim bf16
  std::map<std::pair<std::size_t, std::size_t>, dnnl::matmul::primitive_desc> descs;

  const dnnl::matmul::primitive_desc& desc_for(std::size_t q, std::size_t block) {
    auto& pd = descs[{q, block}];
    if (!pd) {
      using dt = dnnl::memory::data_type;
      using tag = dnnl::memory::format_tag;
      const auto d = static_cast<dnnl::memory::dim>(dim);
      const auto nq = static_cast<dnnl::memory::dim>(q), nb = static_cast<dnnl::memory::dim>(block);
      const dnnl::memory::desc src({nq, d}, dt::bf16, tag::ab);
      const dnnl::memory::desc weights({d, nb}, dt::bf16, tag::ba);  // the rows as stored
      const dnnl::memory::desc dst({nq, nb}, dt::f32, tag::ab);
      pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, dst), engine);
    }
    return pd;
  }
};

DnnlBf16Peer::DnnlBf16Peer(MatrixView candidates) : state_(std::make_unique<State>()) {
  state_->rows = candidates.rows();
  state_->dim = candidates.dim();
  state_->candidates.resize(state_->rows * state_->dim);
  const auto n = static_cast<std::int64_t>(state_->rows);
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < n; ++r) {
    normalised_bf16(candidates, static_cast<std::size_t>(r),
                    state_->candidates.data() + static_cast<std::size_t>(r) * state_->dim);
  }
}

DnnlBf16Peer::~DnnlBf16Peer() = default;

Hits DnnlBf16Peer::search(MatrixView queries, std::size_t k) {
  State& s = *state_;
  const std::size_t nq = queries.rows(), dim = s.dim;
  k = std::min(k, s.rows);
  std::vector<std::uint16_t> q(nq * dim);
  for (std::size_t i = 0; i < nq; ++i) normalised_bf16(queries, i, q.data() + i * dim);
  // Per query: the best k so far as a min-heap of (score, id).
  std::vector<std::vector<std::pair<float, std::int64_t>>> best(nq);
  std::vector<float> scores(nq * std::min(kBlockRows, s.rows));
  for (std::size_t first = 0; first < s.rows; first += kBlockRows) {
    const std::size_t block = std::min(kBlockRows, s.rows - first);
    const auto& pd = s.desc_for(nq, block);
    dnnl::memory src(pd.src_desc(), s.engine, q.data());
    dnnl::memory weights(pd.weights_desc(), s.engine, s.candidates.data() + first * dim);
    dnnl::memory dst(pd.dst_desc(), s.engine, scores.data());
    dnnl::matmul(pd).execute(
        s.stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}});
    s.stream.wait();
    const auto queries_n = static_cast<std::int64_t>(nq);
#pragma omp parallel for schedule(static)
    for (std::int64_t qi = 0; qi < queries_n; ++qi) {
      auto& heap = best[static_cast<std::size_t>(qi)];
      const auto greater = [](const auto& a, const auto& b) { return a.first > b.first; };
      const float* row = scores.data() + static_cast<std::size_t>(qi) * block;
      for (std::size_t j = 0; j < block; ++j) {
        if (heap.size() < k) {
          heap.emplace_back(row[j], static_cast<std::int64_t>(first + j));
          std::push_heap(heap.begin(), heap.end(), greater);
        } else if (row[j] > heap.front().first) {
          std::pop_heap(heap.begin(), heap.end(), greater);
          heap.back() = {row[j], static_cast<std::int64_t>(first + j)};
          std::push_heap(heap.begin(), heap.end(), greater);
        }
      }
    }
  }
  Hits hits(nq, k);
  for (std::size_t i = 0; i < nq; ++i) {
    auto& heap = best[i];
    std::sort(heap.begin(), heap.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t h = 0; h < k; ++h) {
      hits.mutable_scores(i)[h] = heap[h].first;
      hits.mutable_ids(i)[h] = heap[h].second;
    }
  }
  return hits;
}

std::string DnnlBf16Peer::version() {
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch) +
         (v->cpu_runtime == DNNL_RUNTIME_OMP
              ? " (OpenMP)"
              : " (CPU runtime " + std::to_string(v->cpu_runtime) + ")");
}

}  // namespace hetcache::bench
