#!/usr/bin/env bash
# A build as on a fresh machine that has only what scripts/deps.sh installs: every optional package
# made invisible to CMake (FAISS, OpenBLAS, LMDB, oneDNN, the CUDA toolkit, Google Benchmark) and
# gnuplot absent from PATH, with warnings as errors as the presets build. What the optional
# packages change must build -- the library, the command, the benchmarks (the only sources that
# test for a package, checked below) and the GPU tests -- the CUDA-less library must not reference
# the CUDA runtime, the GPU tier must report itself absent ("this build has no CUDA") while the CPU
# tiers search, and the command runs.
# Usage: fresh_machine_build_test.sh SOURCE_DIR
set -euo pipefail
source_dir="$1"
# The build made here has no CUDA, so its GPU tests must skip even where the environment (the GPU
# Docker image) demands a GPU of the main build.
unset HETCACHE_REQUIRE_GPU
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# PATH without gnuplot: every other program of the current PATH, linked into one directory.
mkdir "$work/bin"
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [[ -d "$d" ]] || continue
  for f in "$d"/*; do
    name=${f##*/}
    [[ "$name" == gnuplot* || -e "$work/bin/$name" ]] && continue
    [[ -x "$f" && ! -d "$f" ]] && ln -s "$f" "$work/bin/$name"
  done
done
export PATH="$work/bin"
if command -v gnuplot >/dev/null; then echo "gnuplot is still on PATH"; exit 1; fi

# -O1, not the presets' -O3: this build exists for the code that only a machine without the
# optional packages compiles (the -Werror breaks a fresh clone once had), and everything both
# builds share is compiled at -O3 with warnings as errors by the presets already. -O1 keeps the
# flow analysis that -Wmaybe-uninitialized and friends need, at about half the compile time.
cmake -S "$source_dir" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHETCACHE_WERROR=ON \
      -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" -DCMAKE_C_FLAGS_RELEASE="-O1 -DNDEBUG" \
      -DCMAKE_DISABLE_FIND_PACKAGE_faiss=ON -DCMAKE_DISABLE_FIND_PACKAGE_OpenBLAS=ON \
      -DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=ON -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON \
      -DCMAKE_DISABLE_FIND_PACKAGE_LMDB=ON -DCMAKE_DISABLE_FIND_PACKAGE_dnnl=ON \
      >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
grep -q "LMDB not found" "$work/configure.log" ||
  { cat "$work/configure.log"; echo "LMDB was not hidden"; exit 1; }
grep -q "oneDNN not found" "$work/configure.log" ||
  { cat "$work/configure.log"; echo "oneDNN was not hidden"; exit 1; }
grep -q "hetcache GPU tier: OFF" "$work/configure.log" ||
  { cat "$work/configure.log"; echo "the CUDA toolkit was not hidden"; exit 1; }
# The other tests compile to the same code with or without the packages (the presets build them
# with warnings as errors): a test or tool source that tests for a package must be built here too.
if grep -rlE 'HETCACHE_(HAVE|WITH)_' "$source_dir/tests" "$source_dir/tools" "$source_dir/python/src" \
     --include='*.cpp' --include='*.hpp' --include='*.cu'; then
  echo "these test or tool sources depend on an optional package; build their targets here"
  exit 1
fi
cmake --build "$work/build" --target hetcache hetcache_cli hetcache_gpu_tests bench/all \
      >"$work/build.log" 2>&1 || { grep -B2 -A12 -m3 'error' "$work/build.log" || tail -50 "$work/build.log"; exit 1; }
echo "built the library, the command, the benchmarks and the GPU tests without the optional \
packages, warnings as errors"

# (Outputs are captured before grep: with pipefail, grep -q closing the pipe early would fail it.)
symbols=$(nm -C "$work/build/libhetcache.a")
if grep -q "cudaGetDeviceCount" <<<"$symbols"; then
  echo "a CUDA-less build still references the CUDA runtime"; exit 1
fi
out=$("$work/build/tests/hetcache_gpu_tests" --gtest_filter='GpuTier.AbsentTierSaysWhyAndTheCpuTiersStillWork:GpuTier.DisabledByItsOptions' 2>&1) ||
  { echo "$out"; exit 1; }
echo "$out" | tail -3
skipped=$("$work/build/tests/hetcache_gpu_tests" --gtest_filter='GpuTier.DeviceMatrix*' 2>&1)
grep -q "this build has no CUDA" <<<"$skipped" ||
  { echo "$skipped"; echo "the absent tier does not say the build has no CUDA"; exit 1; }
version=$("$work/build/tools/hetcache" --version)
grep -q "CUDA: not built" <<<"$version" || { echo "$version"; echo "--version does not say CUDA is not built"; exit 1; }
"$work/build/tools/hetcache" demo --runs 1 --quiet >"$work/demo.log" 2>&1 || { cat "$work/demo.log"; exit 1; }
echo "hetcache demo ran"
