// Private to src/compute/cpu: <immintrin.h> for the units compiled with AVX-512 flags. GCC 12
// reports its own _mm512_undefined_* helpers as uninitialised (a known false positive), so the
// include is wrapped; nothing else here (see kernel_abi.hpp for what a kernel unit may include).
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
