// The parts of hetcache._core, each bound in its own file.
#pragma once

#include <nanobind/nanobind.h>

namespace hetcache::python {

void bind_errors(nanobind::module_& m);      // errors.cpp
void bind_engine(nanobind::module_& m);      // engine_bindings.cpp
void bind_cache(nanobind::module_& m);       // cache_bindings.cpp

}  // namespace hetcache::python
