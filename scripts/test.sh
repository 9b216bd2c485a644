#!/usr/bin/env bash
# Installs what is missing, builds and runs the whole test suite with ctest, once per preset,
# then builds the Python package into build/venv and runs pytest (scripts/python_test.sh).
#   scripts/test.sh              Release build (the quick start)
#   scripts/test.sh release asan what CI runs (.ci/run): Release, then AddressSanitizer + UBSan
#   scripts/test.sh debug|tsan   another preset
set -euo pipefail
cd "$(dirname "$0")/.."
presets=("$@")
[[ ${#presets[@]} -eq 0 ]] && presets=(release)
scripts/deps.sh
# The Python package's build (pip install .) compiles the library with the Release preset's exact
# commands, so ccache (its cache in build/: a fresh checkout starts empty) compiles each object
# once. ccache hashes the compiler's name, hence one CXX for both: scikit-build-core would pick
# Python's (x86_64-linux-gnu-g++) and miss every object.
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_DIR="$PWD/build/ccache"
  launcher=(env CMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
export CXX=${CXX:-c++}
for preset in "${presets[@]}"; do
  # The tsan preset builds its own TSan-visible Boost.Fiber and oneTBB (see scripts/tsan-deps.sh).
  if [[ "$preset" == tsan ]]; then scripts/tsan-deps.sh; fi
  echo "== $preset"
  if [[ "$preset" == release ]]; then
    "${launcher[@]}" cmake --preset "$preset" >/dev/null
  else
    cmake --preset "$preset" >/dev/null
  fi
  cmake --build --preset "$preset"
  ctest --preset "$preset" -j "$(nproc)"
done
echo "== python"
"${launcher[@]}" scripts/python_test.sh
