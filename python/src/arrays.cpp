#include "arrays.hpp"

#include <hetcache/error.hpp>

#include <nanobind/stl/string.h>

#include <cstdlib>
#include <new>

namespace hetcache::python {
namespace {

// numpy.ascontiguousarray(obj, dtype=float32): the one conversion for inputs nanobind cannot
// convert itself (lists, objects with __array__ only).
nb::object numpy_float32(nb::handle obj) {
  nb::module_ np = nb::module_::import_("numpy");
  return np.attr("ascontiguousarray")(obj, nb::arg("dtype") = "float32");
}

template <typename Array>
Array as_array(nb::handle obj, const char* name, const char* shape) {
  Array out;
  if (nb::try_cast(obj, out, false)) return out;  // in place
  if (nb::try_cast(obj, out, true)) return out;   // converted once by its own framework
  nb::object converted;
  try {
    converted = numpy_float32(obj);
  } catch (nb::python_error& e) {
    throw Error(ErrorCode::InvalidArgument, std::string(name) + ": expected " + shape +
                                                " of numbers, got " +
                                                nb::type_name(obj.type()).c_str() + " (" +
                                                e.what() + ")");
  }
  if (nb::try_cast(converted, out, false)) return out;
  const auto ndim = nb::cast<std::size_t>(converted.attr("ndim"));
  throw Error(ErrorCode::InvalidArgument, std::string(name) + ": expected " + shape + ", got " +
                                              std::to_string(ndim) + " dimension(s)");
}

}  // namespace

InMatrix as_matrix(nb::handle obj, const char* name) {
  // One vector is a 1 x d matrix over the same memory; its owner (the input, or the converted
  // copy the vector holds) stays alive as long as the matrix.
  InVector row;
  bool converted = false;
  if (!nb::try_cast(obj, row, false)) {
    nb::object dims = nb::getattr(obj, "ndim", nb::none());
    const bool one_d = !dims.is_none() ? nb::cast<long>(dims) == 1
                                       : nb::isinstance<nb::list>(obj) &&
                                             nb::len(obj) > 0 &&
                                             !nb::isinstance<nb::list>(obj[0]) &&
                                             !nb::isinstance<nb::tuple>(obj[0]);
    if (!one_d) return as_array<InMatrix>(obj, name, "a 2-D array (rows x dim)");
    row = as_array<InVector>(obj, name, "a 1-D array");
    converted = true;
  }
  const std::size_t shape[2] = {1, row.shape(0)};
  if (!converted) return InMatrix(row.data(), 2, shape, obj);
  auto* held = new InVector(row);
  nb::capsule owner(held, [](void* p) noexcept { delete static_cast<InVector*>(p); });
  return InMatrix(row.data(), 2, shape, owner);
}

Queries queries_of(nb::handle obj) {
  Queries q{as_matrix(obj, "queries"), Matrix()};
  const std::size_t rows = q.input.shape(0), dim = q.input.shape(1);
  const auto address = reinterpret_cast<std::uintptr_t>(q.input.data());
  const bool aligned = address % 64 == 0 && (rows <= 1 || (dim * sizeof(float)) % 64 == 0);
  if (!aligned && rows * dim * sizeof(float) <= kAlignedCopyBytes)
    q.aligned = Matrix::copy_of(view_of(q.input));
  return q;
}

InVector as_vector(nb::handle obj, const char* name) {
  return as_array<InVector>(obj, name, "a 1-D array");
}

OutMatrix new_matrix(std::size_t rows, std::size_t dim) {
  const std::size_t n = rows * dim;
  if (dim != 0 && n / dim != rows)
    throw Error(ErrorCode::InvalidArgument, "rows x dim overflows: " + std::to_string(rows) +
                                                " x " + std::to_string(dim));
  std::unique_ptr<float[]> buffer(new float[n == 0 ? 1 : n]);
  float* data = buffer.get();
  OutMatrix out{numpy_owning(std::move(buffer), data, {rows, dim}),
                MutableMatrixView(data, rows, dim)};
  return out;
}

std::size_t count_of(std::int64_t value, const char* name) {
  if (value < 0)
    throw Error(ErrorCode::InvalidArgument,
                std::string(name) + " = " + std::to_string(value) + ": must be >= 0");
  return static_cast<std::size_t>(value);
}

std::vector<std::string> keys_of(nb::handle keys, const char* name) {
  if (nb::isinstance<nb::str>(keys) || nb::isinstance<nb::bytes>(keys))
    throw Error(ErrorCode::InvalidArgument,
                std::string(name) + ": expected a sequence of keys, got a single string");
  // A list or tuple is read through its item array (no iterator object per call).
  nb::object seq = nb::steal(PySequence_Fast(keys.ptr(), "expected a sequence of keys"));
  if (!seq.is_valid()) {
    PyErr_Clear();
    throw Error(ErrorCode::InvalidArgument, std::string(name) + ": expected a sequence of keys, got " +
                                                nb::type_name(keys.type()).c_str());
  }
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.ptr());
  PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(n));
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* k = items[i];
    if (PyUnicode_Check(k) && PyUnicode_IS_COMPACT_ASCII(k)) {  // its bytes are its UTF-8
      out.emplace_back(static_cast<const char*>(PyUnicode_DATA(k)),
                       static_cast<std::size_t>(PyUnicode_GET_LENGTH(k)));
    } else if (PyUnicode_Check(k)) {
      Py_ssize_t size = 0;
      const char* utf8 = PyUnicode_AsUTF8AndSize(k, &size);
      if (utf8 == nullptr) throw nb::python_error();
      out.emplace_back(utf8, static_cast<std::size_t>(size));
    } else if (PyBytes_Check(k)) {
      out.emplace_back(PyBytes_AS_STRING(k), static_cast<std::size_t>(PyBytes_GET_SIZE(k)));
    } else {
      throw Error(ErrorCode::InvalidArgument, std::string(name) + "[" + std::to_string(i) +
                                                  "]: a key is str or bytes, got " +
                                                  nb::type_name(nb::handle(k).type()).c_str());
    }
  }
  return out;
}

}  // namespace hetcache::python
