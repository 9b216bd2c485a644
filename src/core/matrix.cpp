#include <hetcache/error.hpp>
#include <hetcache/matrix.hpp>

#include <cstring>
#include <limits>
#include <new>
#include <string>

namespace hetcache {
namespace {

constexpr std::size_t kFloatsPerAlignedRow = Matrix::kRowAlignmentBytes / sizeof(float);

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

void Matrix::AlignedFree::operator()(float* p) const noexcept {
  ::operator delete(p, std::align_val_t(kRowAlignmentBytes));
}

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
  const std::size_t bytes = rows * stride_ * sizeof(float);
  data_.reset(static_cast<float*>(::operator new(bytes, std::align_val_t(kRowAlignmentBytes))));
  std::memset(data_.get(), 0, bytes);
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
