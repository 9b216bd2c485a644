#!/usr/bin/env bash
# Builds the library and the GPU tests with HETCACHE_CUDA=OFF in a temporary directory and runs
# them: the CPU-only build must build, report the GPU tier absent ("no CUDA"), and still search.
# Usage: cuda_off_test.sh SOURCE_DIR
set -euo pipefail
source_dir="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake -S "$source_dir" -B "$work" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHETCACHE_CUDA=OFF \
      -DHETCACHE_BUILD_BENCH=OFF -DHETCACHE_BUILD_TOOLS=OFF >"$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
grep -q "hetcache GPU tier: OFF" "$work/configure.log" || { echo "CUDA was not switched off"; exit 1; }
cmake --build "$work" --target hetcache_gpu_tests >"$work/build.log" || { tail -50 "$work/build.log"; exit 1; }
# (Outputs are captured before grep: with pipefail, grep -q closing the pipe early would fail it.)
symbols=$(nm -C "$work/libhetcache.a")
if grep -q "cudaGetDeviceCount" <<<"$symbols"; then
  echo "a CUDA-off build still references the CUDA runtime"; exit 1
fi
out=$("$work/tests/hetcache_gpu_tests" --gtest_filter='GpuTier.AbsentTierSaysWhyAndTheCpuTiersStillWork:GpuTier.DisabledByItsOptions' 2>&1) ||
  { echo "$out"; exit 1; }
echo "$out" | tail -3
skipped=$("$work/tests/hetcache_gpu_tests" --gtest_filter='GpuTier.DeviceMatrix*' 2>&1)
grep -q "this build has no CUDA" <<<"$skipped" ||
  { echo "$skipped"; echo "the absent tier does not say the build has no CUDA"; exit 1; }
