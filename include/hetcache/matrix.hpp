#pragma once
// Row-major float32 matrices: non-owning views and an owning, 64-byte aligned Matrix.

#include <cstddef>
#include <memory>

namespace hetcache {

// A read-only view of `rows` vectors of `dim` floats; row i starts at data + i * stride.
// The stride is counted in floats (not bytes) and must be >= dim; 0 means "dim" (packed rows).
// Constructing a view checks its shape: a null pointer with rows > 0, a stride < dim, or a
// rows * stride that overflows throws hetcache::Error(InvalidArgument) naming the bad value.
class MatrixView {
 public:
  MatrixView() = default;
  MatrixView(const float* data, std::size_t rows, std::size_t dim, std::size_t stride = 0);

  const float* data() const noexcept { return data_; }
  std::size_t rows() const noexcept { return rows_; }
  std::size_t dim() const noexcept { return dim_; }
  std::size_t stride() const noexcept { return stride_; }
  const float* row(std::size_t i) const noexcept { return data_ + i * stride_; }
  bool empty() const noexcept { return rows_ == 0; }

  // Rows [first, first + count) as a view; throws InvalidArgument when out of range.
  MatrixView slice(std::size_t first, std::size_t count) const;

 private:
  const float* data_ = nullptr;
  std::size_t rows_ = 0;
  std::size_t dim_ = 0;
  std::size_t stride_ = 0;
};

// A writable view with the same rules as MatrixView.
class MutableMatrixView {
 public:
  MutableMatrixView() = default;
  MutableMatrixView(float* data, std::size_t rows, std::size_t dim, std::size_t stride = 0);

  float* data() const noexcept { return data_; }
  std::size_t rows() const noexcept { return rows_; }
  std::size_t dim() const noexcept { return dim_; }
  std::size_t stride() const noexcept { return stride_; }
  float* row(std::size_t i) const noexcept { return data_ + i * stride_; }
  operator MatrixView() const { return MatrixView(data_, rows_, dim_, stride_); }

 private:
  float* data_ = nullptr;
  std::size_t rows_ = 0;
  std::size_t dim_ = 0;
  std::size_t stride_ = 0;
};

// An owning matrix whose rows each start on a 64-byte boundary (stride = dim rounded up to 16
// floats). New matrices are zero-filled, padding included. Movable, not implicitly copyable.
// Matrices of 2 MiB and more (when rounding up to 2 MiB adds at most 1/8) start on a 2 MiB
// boundary and ask for transparent huge pages, which a scan or a random row copy over gigabytes
// needs: one TLB entry per 2 MiB instead of per 4 KiB. Where THP is off they use small pages.
class Matrix {
 public:
  static constexpr std::size_t kRowAlignmentBytes = 64;

  Matrix() = default;
  Matrix(std::size_t rows, std::size_t dim);
  Matrix(Matrix&&) noexcept = default;
  Matrix& operator=(Matrix&&) noexcept = default;
  Matrix(const Matrix&) = delete;
  Matrix& operator=(const Matrix&) = delete;
  Matrix clone() const;

  // Copies any view (any stride) into a new aligned matrix.
  static Matrix copy_of(MatrixView view);

  float* data() noexcept { return data_.get(); }
  const float* data() const noexcept { return data_.get(); }
  std::size_t rows() const noexcept { return rows_; }
  std::size_t dim() const noexcept { return dim_; }
  std::size_t stride() const noexcept { return stride_; }
  float* row(std::size_t i) noexcept { return data_.get() + i * stride_; }
  const float* row(std::size_t i) const noexcept { return data_.get() + i * stride_; }
  float& operator()(std::size_t r, std::size_t c) noexcept { return row(r)[c]; }
  float operator()(std::size_t r, std::size_t c) const noexcept { return row(r)[c]; }

  MatrixView view() const { return MatrixView(data(), rows_, dim_, stride_); }
  MutableMatrixView mutable_view() { return MutableMatrixView(data(), rows_, dim_, stride_); }
  operator MatrixView() const { return view(); }

 private:
  struct AlignedFree {
    void operator()(float* p) const noexcept;
  };
  std::unique_ptr<float[], AlignedFree> data_;
  std::size_t rows_ = 0;
  std::size_t dim_ = 0;
  std::size_t stride_ = 0;
};

}  // namespace hetcache
