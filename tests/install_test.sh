#!/usr/bin/env bash
# Installs the built library into a temporary prefix, then configures, builds and runs a separate
# project that uses find_package(hetcache), with no CUDA toolkit visible to it. Usage: install_test.sh BUILD_DIR SOURCE_DIR [CXX_FLAGS]
# (CXX_FLAGS: the build's own, so a sanitizer build links its consumer with the same runtime.)
set -euo pipefail
build_dir="$1"
source_dir="$2"
cxx_flags="${3:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
# The GPU tier is a plugin installed beside the library; consumers need no CUDA toolkit (hidden
# from the consumer's configure below).
if [[ -f "$build_dir/libhetcache_cuda.so" ]]; then
  compgen -G "$work/prefix/lib*/libhetcache_cuda.so" >/dev/null ||
    { echo "the CUDA plugin was not installed"; exit 1; }
fi
# The installed command finds the installed plugin (bin/../lib), or says there is none to find.
if [[ -x "$work/prefix/bin/hetcache" ]]; then
  version=$(env HETCACHE_GPU_PLUGIN= "$work/prefix/bin/hetcache" --version)
  if [[ -f "$build_dir/libhetcache_cuda.so" ]] && grep -q "no GPU plugin" <<<"$version"; then
    echo "the installed command does not find the installed plugin: $version"; exit 1
  fi
fi
cmake -S "$source_dir/tests/install_consumer" -B "$work/build" -G Ninja \
      -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CXX_FLAGS="$cxx_flags" -DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=ON >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/consumer"
