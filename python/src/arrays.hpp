// python/src: the nanobind module hetcache._core -- the public C++ API (include/hetcache) bound
// for Python, nothing more: no placement, no threads, no store of its own. This header is how
// arrays cross: inputs are read in place when they already are C-contiguous float32 (numpy, or
// anything exporting DLPack or the buffer protocol: torch CPU tensors), else converted once with
// numpy; outputs are numpy arrays that own the C++ buffer they were computed in.
#pragma once

#include <hetcache/matrix.hpp>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hetcache::python {

namespace nb = nanobind;

using InMatrix = nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
using InVector = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using OutArray = nb::ndarray<float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

// A C-contiguous float32 matrix of `obj` (a 1-D input is one row), read in place when it already
// is one; `name` is the argument's name for errors. Holds a reference that keeps the data alive.
InMatrix as_matrix(nb::handle obj, const char* name);
// A C-contiguous float32 vector of `obj`.
InVector as_vector(nb::handle obj, const char* name);

inline MatrixView view_of(const InMatrix& m) {
  return MatrixView(m.data(), m.shape(0), m.shape(1));
}

// Query rows as the kernels read them best: in place when they start on 64-byte lines (a row
// size that is a multiple of 16 floats keeps every row aligned), else -- numpy starts arrays 16
// bytes past a line, so every vector load of a row would span two lines (a 16 x 100k x 768 search
// took 1.19-1.32x as long) -- copied into aligned rows, when they are at most kAlignedCopyBytes.
// Candidates are never copied.
inline constexpr std::size_t kAlignedCopyBytes = std::size_t{4} << 20;
struct Queries {
  InMatrix input;
  Matrix aligned;  // empty when the input is read in place
  MatrixView view() const { return aligned.rows() != 0 ? aligned.view() : view_of(input); }
};
Queries queries_of(nb::handle obj);

// A numpy array over memory owned by `owner` (moved to the heap and freed with the array).
// Strides count elements, as DLPack's do; empty: C order.
template <typename T, typename Owner>
nb::ndarray<nb::numpy, T> numpy_owning(Owner&& owner, T* data,
                                       std::initializer_list<std::size_t> shape,
                                       std::initializer_list<std::int64_t> strides = {}) {
  using Held = std::decay_t<Owner>;
  auto* held = new Held(std::forward<Owner>(owner));
  nb::capsule free_it(held, [](void* p) noexcept { delete static_cast<Held*>(p); });
  return nb::ndarray<nb::numpy, T>(data, shape, free_it, strides);
}

// A new, uninitialised float32 numpy array of rows x dim, and a view to fill it through (with
// or without the GIL).
struct OutMatrix {
  nb::ndarray<nb::numpy, float> array;
  MutableMatrixView view;
};
OutMatrix new_matrix(std::size_t rows, std::size_t dim);

// A count from Python (k, rows): a negative one is an error naming it, never a huge size_t.
std::size_t count_of(std::int64_t value, const char* name);

// Python str / bytes keys as the std::strings the C++ API takes (a str is UTF-8 encoded).
std::vector<std::string> keys_of(nb::handle keys, const char* name);

}  // namespace hetcache::python
