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
for preset in "${presets[@]}"; do
  # The tsan preset builds its own TSan-visible Boost.Fiber and oneTBB (see scripts/tsan-deps.sh).
  if [[ "$preset" == tsan ]]; then scripts/tsan-deps.sh; fi
  echo "== $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  ctest --preset "$preset" -j "$(nproc)"
done
echo "== python"
scripts/python_test.sh
