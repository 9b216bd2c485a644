// Making a CompactSet: the rows encoded by the ISA's kernels, and each row's error bounds for
// exact mode, derived in double precision from the rows as stored (so they hold for whatever the
// encoding did to that row: rounding, overflow to infinity, an I8 scale).
//
// For a query q and a row c stored as c', the f32 path's key and the compact key differ by at
// most (compact_abi.hpp's slack, with u = 2^-24 and g = dot_rounding_bound(dim)):
//   Dot     |q| (|c - c'| + g (|c| + |c'|)) + |q - q'| |c'| + t
//   Cosine  the Dot bound times 1/|q| 1/|c|, plus 3u (1+g)^2 (|c| + |c'|) / |c| for the two
//           multiplications of the key
//   L2      twice the Dot bound, plus 4u (|c| + |c'|) |q| + 4u |c|^2 + 4u |q|^2
// where q' is the query as the kernel reads it (rounded to bf16 by the vdpbf16ps kernel, else q)
// and t covers products and sums that underflow, or that vdpbf16ps flushes to zero (d 2^-124).
// Each term is rounded up (x (1 + 2^-20)) so the slack's own float arithmetic cannot shrink it.
// Rows whose bound cannot be trusted (NaN or infinity in the row or its encoding, |c| over 2^60
// where products may overflow, or under 2^-60 where 1/|c| may) get an infinite slack: they are
// always re-scored.
#include <hetcache/error.hpp>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>

#include "compute/cpu/compact_rows.hpp"

namespace hetcache {
namespace cpu {
namespace {

constexpr double kLargestTrustedNorm = 0x1p60;
constexpr double kSmallestTrustedNorm = 0x1p-60;

struct RowBound {
  double f32_norm, stored_norm, error;
  bool trusted;
};

RowBound row_bound(const detail::CompactRows& set, const float* row, std::size_t r) {
  double c2 = 0.0, s2 = 0.0, e2 = 0.0;
  for (std::size_t i = 0; i < set.dim; ++i) {
    const double c = row[i], s = stored_value(set, r, i);
    c2 += c * c;
    s2 += s * s;
    e2 += (c - s) * (c - s);
  }
  RowBound b{std::sqrt(c2), std::sqrt(s2), std::sqrt(e2), true};
  b.trusted = std::isfinite(c2) && std::isfinite(s2) && std::isfinite(e2) &&
              b.f32_norm <= kLargestTrustedNorm &&
              (b.f32_norm == 0.0 || b.f32_norm >= kSmallestTrustedNorm);
  return b;
}

}  // namespace

double stored_value(const detail::CompactRows& set, std::size_t row, std::size_t i) {
  const unsigned char* base = set.codes.get();
  switch (set.element_kind()) {
    case ElementKind::F16:
      return float_from_f16(reinterpret_cast<const std::uint16_t*>(base)[row * set.stride + i]);
    case ElementKind::Bf16:
      return float_from_bf16(reinterpret_cast<const std::uint16_t*>(base)[row * set.stride + i]);
    case ElementKind::I8:
      return static_cast<double>(set.scales[row]) *
             static_cast<signed char>(base[row * set.stride + i]);
  }
  return 0.0;
}

double dot_rounding_bound(std::size_t dim) { return (static_cast<double>(dim) + 16.0) * 0x1p-23; }

void for_ranges(tbb::task_arena* arena, std::size_t parts, std::size_t n, std::size_t min_items,
                const std::function<void(std::size_t, std::size_t)>& fn) {
  if (arena == nullptr) parts = 1;
  parts = std::max<std::size_t>(1, std::min(parts, n / std::max<std::size_t>(1, min_items)));
  if (parts <= 1) {
    if (n > 0) fn(0, n);
    return;
  }
  arena->execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, parts, 1),
        [&](const tbb::blocked_range<std::size_t>& r) {
          for (std::size_t i = r.begin(); i != r.end(); ++i) fn(n * i / parts, n * (i + 1) / parts);
        },
        tbb::simple_partitioner());
  });
}

namespace {

// Codes for rows x stride elements, zeroed, each row on 64 bytes.
std::shared_ptr<unsigned char[]> allocate_codes(std::size_t rows, std::size_t stride,
                                                std::size_t bytes_per) {
  if (stride != 0 && rows > std::numeric_limits<std::size_t>::max() / stride / 2) {
    throw Error(ErrorCode::InvalidArgument, "compact rows: " + std::to_string(rows) +
                                                " rows of stride " + std::to_string(stride) +
                                                " overflow the size type");
  }
  const std::size_t bytes = std::max<std::size_t>(64, rows * stride * bytes_per);
  auto* codes = static_cast<unsigned char*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  if (codes == nullptr) throw std::bad_alloc();
  std::memset(codes, 0, bytes);
  return std::shared_ptr<unsigned char[]>(codes, [](unsigned char* p) { std::free(p); });
}

// Sizes every per-row array of a compact (not F32) set of set.rows rows and allocates its codes.
void allocate_rows(detail::CompactRows& set) {
  set.stride = detail::CompactRows::row_stride(set.type, set.dim);
  set.codes = allocate_codes(set.rows, set.stride, element_bytes(set.type));
  if (set.type == StorageType::I8) {
    set.scales.resize(set.rows);
    set.code_sums.resize(set.rows);
  }
  set.sq_norms.resize(set.rows);
  set.cos_terms.resize(set.rows);
  for (detail::RowSlack* s : {&set.dot, &set.cosine, &set.l2}) {
    s->beta.resize(set.rows);
    s->norm.resize(set.rows);
  }
  set.cosine.add.resize(set.rows);
  set.l2.add.resize(set.rows);
}

// Row r's code sum (I8) and bounds, from its f32 values and its codes; set.sq_norms[r] and
// set.cos_terms[r] are set. Returns its |c - c'| / |c| and whether its bounds are finite.
RowBound set_row_bounds(detail::CompactRows& set, std::size_t r, const float* row) {
  if (set.type == StorageType::I8) {
    const auto* codes = reinterpret_cast<const signed char*>(set.codes.get() + r * set.stride);
    std::int32_t sum = 0;
    for (std::size_t i = 0; i < set.dim; ++i) sum += codes[i];
    set.code_sums[r] = sum;
  }
  constexpr double inf = std::numeric_limits<double>::infinity();
  const double g = dot_rounding_bound(set.dim);
  const RowBound b = row_bound(set, row, r);
  const double ct = set.cos_terms[r];
  const double beta = b.trusted ? b.error + g * (b.f32_norm + b.stored_norm) : inf;
  const double both = b.f32_norm + b.stored_norm;
  set.dot.beta[r] = rounded_up(beta);
  set.dot.norm[r] = rounded_up(b.stored_norm);
  set.cosine.beta[r] = rounded_up(beta * ct);
  set.cosine.norm[r] = rounded_up(b.stored_norm * ct);
  set.cosine.add[r] = rounded_up(3 * kUnit * (1 + g) * (1 + g) * both * ct);
  set.l2.beta[r] = rounded_up(2 * beta + 4 * kUnit * both);
  set.l2.norm[r] = rounded_up(2 * b.stored_norm);
  set.l2.add[r] = rounded_up(4 * kUnit * set.sq_norms[r]);
  return b;
}

}  // namespace

std::shared_ptr<const detail::CompactRows> make_compact_rows(
    const CompactKernelTable& kernels, tbb::task_arena* arena, std::size_t threads, MatrixView src,
    Matrix kept, std::vector<float> sq_norms, StorageType type) {
  auto set = std::make_shared<detail::CompactRows>();
  set->type = type;
  set->rows = src.rows();
  set->dim = src.dim();
  set->has_f32 = kept.rows() == src.rows() && kept.dim() == src.dim();
  set->f32_rows = std::move(kept);
  if (type == StorageType::F32) {
    set->sq_norms = std::move(sq_norms);
    set->cos_terms.resize(set->rows);
    for (std::size_t i = 0; i < set->rows; ++i) set->cos_terms[i] = cosine_term(set->sq_norms[i]);
    return set;
  }
  allocate_rows(*set);
  set->sq_norms = std::move(sq_norms);
  for (std::size_t i = 0; i < set->rows; ++i) set->cos_terms[i] = cosine_term(set->sq_norms[i]);
  const std::size_t bytes_per = element_bytes(type);
  const ElementKind kind = set->element_kind();
  std::mutex merge;
  for_ranges(arena, 4 * threads, set->rows, 256, [&](std::size_t begin, std::size_t end) {
    const MatrixView part = src.slice(begin, end - begin);
    kernels.encode(Rows{part.data(), part.rows(), part.dim(), part.stride()}, kind,
                   set->codes.get() + begin * set->stride * bytes_per, set->stride,
                   set->scales.empty() ? nullptr : set->scales.data() + begin);
    double max_error = 0.0;
    float max_cos = 0.0f;
    for (std::size_t r = begin; r < end; ++r) {
      const RowBound b = set_row_bounds(*set, r, src.row(r));
      if (b.trusted) {
        if (b.f32_norm > 0) max_error = std::max(max_error, b.error / b.f32_norm);
        max_cos = std::max(max_cos, set->cos_terms[r]);
      }
    }
    const std::lock_guard<std::mutex> lock(merge);
    set->max_relative_error = std::max(set->max_relative_error, max_error);
    set->max_cos_term = std::max(set->max_cos_term, max_cos);
  });
  return set;
}

std::unique_ptr<detail::CompactRows> make_dead_compact_rows(StorageType type, std::size_t rows,
                                                            std::size_t dim) {
  auto set = std::make_unique<detail::CompactRows>();
  set->type = type;
  set->rows = rows;
  set->dim = dim;
  allocate_rows(*set);
  for (std::size_t r = 0; r < rows; ++r) mark_compact_row_dead(*set, r);
  return set;
}

void write_compact_row(const CompactKernelTable& kernels, detail::CompactRows& set, std::size_t r,
                       const float* row, float sq_norm) {
  const std::size_t bytes_per = element_bytes(set.type);
  kernels.encode(Rows{row, 1, set.dim, set.dim}, set.element_kind(),
                 set.codes.get() + r * set.stride * bytes_per, set.stride,
                 set.scales.empty() ? nullptr : set.scales.data() + r);
  set.sq_norms[r] = sq_norm;
  set.cos_terms[r] = cosine_term(sq_norm);
  const RowBound b = set_row_bounds(set, r, row);
  if (b.trusted) {
    if (b.f32_norm > 0) {
      set.max_relative_error = std::max(set.max_relative_error, b.error / b.f32_norm);
    }
    set.max_cos_term = std::max(set.max_cos_term, set.cos_terms[r]);
  }
}

void mark_compact_row_dead(detail::CompactRows& set, std::size_t r) {
  constexpr float nan = std::numeric_limits<float>::quiet_NaN();
  unsigned char* codes = set.codes.get() + r * set.stride * element_bytes(set.type);
  switch (set.element_kind()) {
    case ElementKind::F16:
      reinterpret_cast<std::uint16_t*>(codes)[0] = 0x7e00;
      break;
    case ElementKind::Bf16:
      reinterpret_cast<std::uint16_t*>(codes)[0] = 0x7fc0;
      break;
    case ElementKind::I8:
      set.scales[r] = nan;
      break;
  }
  set.sq_norms[r] = nan;
  set.cos_terms[r] = nan;
}

void decode_compact_row(const detail::CompactRows& set, std::size_t r, float* out) {
  const unsigned char* codes = set.codes.get() + r * set.stride * element_bytes(set.type);
  const float scale = set.element_kind() == ElementKind::I8 ? set.scales[r] : 0.0f;
  decode_row_reference(set.element_kind(), codes, set.dim, scale, out);
}

}  // namespace cpu

namespace detail {

cpu::ElementKind CompactRows::element_kind() const { return cpu::element_kind(type); }

std::size_t CompactRows::compact_bytes() const {
  if (type == StorageType::F32) return f32_rows.rows() * f32_rows.stride() * sizeof(float);
  return rows * row_bytes(type, dim);
}

std::size_t CompactRows::row_stride(StorageType type, std::size_t dim) {
  const std::size_t per_line = 64 / element_bytes(type);
  return (dim + per_line - 1) / per_line * per_line;
}

std::size_t CompactRows::row_bytes(StorageType type, std::size_t dim) {
  // sq_norm, cos_term, beta and norm per metric, Cosine's and L2's add; I8: scale, code sum.
  const std::size_t per_row_floats = 2 + 2 * 3 + 2 + (type == StorageType::I8 ? 2 : 0);
  return row_stride(type, dim) * element_bytes(type) + per_row_floats * sizeof(float);
}

}  // namespace detail

StorageType CompactSet::type() const noexcept { return rows_ ? rows_->type : StorageType::F32; }
std::size_t CompactSet::rows() const noexcept { return rows_ ? rows_->rows : 0; }
std::size_t CompactSet::dim() const noexcept { return rows_ ? rows_->dim : 0; }
std::size_t CompactSet::compact_bytes() const noexcept {
  return rows_ ? rows_->compact_bytes() : 0;
}
double CompactSet::max_relative_error() const noexcept {
  return rows_ ? rows_->max_relative_error : 0.0;
}

CandidateView CompactSet::f32_rows() const noexcept {
  if (!rows_ || !rows_->has_f32) return CandidateView();
  return CandidateView(rows_->f32_rows.view(), rows_->sq_norms);
}

std::vector<float> CompactSet::decoded_row(std::size_t i) const {
  if (!rows_ || i >= rows_->rows) {
    throw Error(ErrorCode::InvalidArgument, "decoded_row: row " + std::to_string(i) +
                                                " is out of range (" + std::to_string(rows()) +
                                                " rows)");
  }
  std::vector<float> out(rows_->dim);
  if (rows_->type == StorageType::F32) {
    std::copy_n(rows_->f32_rows.row(i), rows_->dim, out.begin());
  } else {
    cpu::decode_compact_row(*rows_, i, out.data());
  }
  return out;
}

}  // namespace hetcache
