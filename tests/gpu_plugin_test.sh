#!/usr/bin/env bash
# The GPU tier as a plugin (src/compute/gpu/gpu_plugin.hpp), seen from the command:
#   1. the command links no CUDA library and has no path to one;
#   2. a copy of it, away from the build and the plugin, with LD_LIBRARY_PATH nowhere near CUDA,
#      starts, says why there is no GPU tier, and runs the demo;
#   3. a plugin from another build, one whose libraries are missing, and a library that is no
#      plugin are each refused with the reason, and the command still runs;
#   4. where the build has the real plugin: it is the one linking cuBLAS, and the command finds it.
# gpu_plugin_test.sh COMMAND REAL_PLUGIN_OR_EMPTY FOREIGN_PLUGIN MISSING_DEPENDENCY_PLUGIN NOT_A_PLUGIN
set -euo pipefail
command=$1 real=$2 foreign=$3 missing=$4 not_plugin=$5
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

dynamic=$(readelf -d "$command")
if grep -Ei 'NEEDED.*lib(cu|nv)' <<<"$dynamic"; then fail "the command needs a CUDA library"; fi
if grep -Ei '(RPATH|RUNPATH).*cuda' <<<"$dynamic"; then fail "the command has a path to CUDA"; fi

mkdir "$work/bin"
cp "$command" "$work/bin/hetcache"
cd "$work"
version=$(env LD_LIBRARY_PATH=/nonexistent HETCACHE_GPU_PLUGIN= "$work/bin/hetcache" --version) ||
  fail "the command does not start without CUDA libraries: $version"
grep -q "GPU tier: absent: no GPU plugin (libhetcache_cuda.so) in $work/bin" <<<"$version" ||
  fail "--version does not say the plugin is missing: $version"
env LD_LIBRARY_PATH=/nonexistent "$work/bin/hetcache" demo --runs 1 --quiet >"$work/demo.log" 2>&1 ||
  { cat "$work/demo.log"; fail "the demo does not run without the plugin"; }

refused() {  # PLUGIN EXPECTED-REASON
  local out
  out=$(env HETCACHE_GPU_PLUGIN="$1" "$work/bin/hetcache" --version) || fail "--version failed with $1: $out"
  grep -qF "GPU tier: absent: $2" <<<"$out" || fail "$1 was not refused with '$2': $out"
}
refused "$foreign" "the GPU plugin $foreign comes from another build (plugin ABI 0.0.0-foreign"
refused "$missing" "the GPU plugin $missing could not be loaded: libhetcache_test_dependency.so: cannot open shared object file"
refused "$not_plugin" "$not_plugin is not a hetcache GPU plugin (no hetcache_gpu_plugin)"
refused "$work/nothing.so" "HETCACHE_GPU_PLUGIN names $work/nothing.so, which does not exist"
env HETCACHE_GPU_PLUGIN="$foreign" "$work/bin/hetcache" demo --runs 1 --quiet >"$work/demo.log" 2>&1 ||
  { cat "$work/demo.log"; fail "the demo does not run beside a refused plugin"; }

if [[ -n "$real" ]]; then
  readelf -d "$real" | grep -q 'NEEDED.*libcublas' || fail "the plugin $real does not link cuBLAS"
  version=$(env HETCACHE_GPU_PLUGIN= "$command" --version)
  grep -q "GPU tier: " <<<"$version" || fail "no GPU tier line: $version"
  if grep -q "no GPU plugin\|could not be loaded\|another build" <<<"$version"; then
    fail "the command in the build tree does not load the build's plugin: $version"
  fi
  echo "$version" | tail -1
fi
echo "the command runs without CUDA; plugins refused with their reasons"
