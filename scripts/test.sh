#!/usr/bin/env bash
# Installs what is missing, builds and runs the whole test suite with ctest.
#   scripts/test.sh            Release build (what CI runs)
#   scripts/test.sh asan       AddressSanitizer + UBSan build; also debug, tsan
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
scripts/deps.sh
# The tsan preset builds its own TSan-visible Boost.Fiber and oneTBB (see scripts/tsan-deps.sh).
if [[ "$preset" == tsan ]]; then scripts/tsan-deps.sh; fi
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset" -j "$(nproc)"
