#include "bindings.hpp"

#include <hetcache/error.hpp>

#include <array>
#include <cstddef>
#include <string>

namespace hetcache::python {
namespace nb = nanobind;
namespace {

// Python's class for each ErrorCode, in the enum's order; the bases say which built-in
// exception a caller may already catch (a bad argument is also a ValueError).
struct ErrorClass {
  ErrorCode code;
  const char* name;
  PyObject* builtin_base;  // besides hetcache.Error; nullptr: none
  const char* doc;
};

std::array<PyObject*, 8> classes{};

}  // namespace

void bind_errors(nb::module_& m) {
  const ErrorClass table[] = {
      {ErrorCode::InvalidArgument, "InvalidArgumentError", PyExc_ValueError,
       "A value is out of range or malformed (the message names it)."},
      {ErrorCode::DimensionMismatch, "DimensionMismatchError", PyExc_ValueError,
       "Two inputs disagree on the vector dimension."},
      {ErrorCode::Unsupported, "UnsupportedError", nullptr,
       "Asked for something this build, machine or store cannot do."},
      {ErrorCode::Corruption, "CorruptionError", nullptr, "Stored data failed its checks."},
      {ErrorCode::StoreUnavailable, "StoreUnavailableError", PyExc_ConnectionError,
       "A durable store cannot be reached or opened."},
      {ErrorCode::GpuError, "GpuError", nullptr, "A CUDA / cuBLAS call failed."},
      {ErrorCode::Conflict, "ConflictError", nullptr,
       "A key already holds a different vector (ingest with on_conflict='error')."},
      {ErrorCode::Internal, "InternalError", nullptr, "A bug in hetcache; please report it."},
  };
  static_assert(std::size(table) == std::size(classes));
  PyObject* base = PyErr_NewExceptionWithDoc("hetcache.Error",
                                             "Every error hetcache raises; .code names its kind.",
                                             PyExc_Exception, nullptr);
  if (base == nullptr) throw nb::python_error();
  m.attr("Error") = nb::steal(base);
  for (const ErrorClass& c : table) {
    nb::object bases = c.builtin_base == nullptr
                           ? nb::object(nb::borrow(base))
                           : nb::object(nb::make_tuple(nb::borrow(base), nb::borrow(c.builtin_base)));
    PyObject* cls = PyErr_NewExceptionWithDoc((std::string("hetcache.") + c.name).c_str(), c.doc,
                                              bases.ptr(), nullptr);
    if (cls == nullptr) throw nb::python_error();
    nb::setattr(nb::handle(cls), "code", nb::str(to_string(c.code)));
    m.attr(c.name) = nb::steal(cls);
    classes[static_cast<std::size_t>(c.code)] = cls;
  }
  nb::setattr(nb::handle(base), "code", nb::none());
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const Error& e) {
      const auto i = static_cast<std::size_t>(e.code());
      PyErr_SetString(i < classes.size() ? classes[i] : PyExc_RuntimeError, e.what());
    }
  });
}

}  // namespace hetcache::python
