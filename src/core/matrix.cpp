#include <hetcache/error.hpp>
#include <hetcache/matrix.hpp>

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>

namespace hetcache {
namespace {

constexpr std::size_t kFloatsPerAlignedRow = Matrix::kRowAlignmentBytes / sizeof(float);
// A transparent huge page on x86-64. Matrices at least this large are allocated on its boundary and
// asked to be backed by huge pages, when that rounds their size up by at most 1/8: a scan or a
// random row copy over gigabytes then misses the TLB once per 2 MiB instead of once per 4 KiB.
constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

// 64-byte aligned, zero-filled memory for `bytes` (a multiple of 64); freed with std::free.
float* allocate_rows(std::size_t bytes) {
  const std::size_t huge = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  const bool use_huge = bytes >= kHugePageBytes && huge - bytes <= bytes / 8;
  const std::size_t alignment = use_huge ? kHugePageBytes : Matrix::kRowAlignmentBytes;
  const std::size_t size = use_huge ? huge : bytes;
  void* p = std::aligned_alloc(alignment, size);
  if (p == nullptr) throw std::bad_alloc();
  // Before the first touch, so the zero-fill faults in huge pages. Where THP is off (or this is not
  // an mmap'd range the kernel can back that way) the call fails and small pages are used.
  if (use_huge) (void)::madvise(p, size, MADV_HUGEPAGE);
  std::memset(p, 0, bytes);
  return static_cast<float*>(p);
}

void check_shape(const char* what, const void* data, std::size_t rows, std::size_t dim,
                 std::size_t stride) {
  if (stride < dim) {
    throw Error(ErrorCode::InvalidArgument, std::string(what) + ": row stride " +
                                                std::to_string(stride) + " is smaller than dim " +
                                                std::to_string(dim));
  }
  if (rows > 0 && data == nullptr) {
    throw Error(ErrorCode::InvalidArgument,
                std::string(what) + ": null data pointer with rows = " + std::to_string(rows));
  }
  if (rows > 0 && stride > std::numeric_limits<std::size_t>::max() / sizeof(float) / rows) {
    throw Error(ErrorCode::InvalidArgument, std::string(what) + ": rows " + std::to_string(rows) +
                                                " x stride " + std::to_string(stride) +
                                                " overflows the address space");
  }
}

}  // namespace

MatrixView::MatrixView(const float* data, std::size_t rows, std::size_t dim, std::size_t stride)
    : data_(data), rows_(rows), dim_(dim), stride_(stride == 0 ? dim : stride) {
  check_shape("MatrixView", data_, rows_, dim_, stride_);
}

MatrixView MatrixView::slice(std::size_t first, std::size_t count) const {
  if (first > rows_ || count > rows_ - first) {
    throw Error(ErrorCode::InvalidArgument,
                "MatrixView::slice: rows [" + std::to_string(first) + ", " + std::to_string(first) +
                    " + " + std::to_string(count) + ") outside 0.." + std::to_string(rows_));
  }
  return MatrixView(count == 0 ? nullptr : data_ + first * stride_, count, dim_, stride_);
}

MutableMatrixView::MutableMatrixView(float* data, std::size_t rows, std::size_t dim,
                                     std::size_t stride)
    : data_(data), rows_(rows), dim_(dim), stride_(stride == 0 ? dim : stride) {
  check_shape("MutableMatrixView", data_, rows_, dim_, stride_);
}

void Matrix::AlignedFree::operator()(float* p) const noexcept { std::free(p); }

Matrix::Matrix(std::size_t rows, std::size_t dim)
    : rows_(rows),
      dim_(dim),
      stride_((dim + kFloatsPerAlignedRow - 1) / kFloatsPerAlignedRow * kFloatsPerAlignedRow) {
  if (dim > std::numeric_limits<std::size_t>::max() - kFloatsPerAlignedRow) {
    throw Error(ErrorCode::InvalidArgument, "Matrix: dim " + std::to_string(dim) + " is too large");
  }
  if (rows == 0 || stride_ == 0) return;
  if (stride_ > std::numeric_limits<std::size_t>::max() / sizeof(float) / rows) {
    throw Error(ErrorCode::InvalidArgument, "Matrix: " + std::to_string(rows) + " rows x " +
                                                std::to_string(dim) + " dims overflows");
  }
  data_.reset(allocate_rows(rows * stride_ * sizeof(float)));
}

Matrix Matrix::clone() const {
  Matrix m(rows_, dim_);
  if (data_) std::memcpy(m.data(), data(), rows_ * stride_ * sizeof(float));
  return m;
}

Matrix Matrix::copy_of(MatrixView view) {
  Matrix m(view.rows(), view.dim());
  for (std::size_t r = 0; r < view.rows(); ++r) {
    std::memcpy(m.row(r), view.row(r), view.dim() * sizeof(float));
  }
  return m;
}

}  // namespace hetcache
