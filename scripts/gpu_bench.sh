#!/usr/bin/env bash
# Everything the GPU tier owes a real GPU, in one call: the GPU tests with HETCACHE_REQUIRE_GPU=1
# (no silent skip), then the GPU benchmark and torch's mm + topk on the same shapes, on an existing
# release build with CUDA (the GPU machine reaches no package registry, so this script installs
# and builds nothing: build on a machine with the toolkit and carry build/release, or, where the
# GPU machine lacks the Debian libraries too, use scripts/gpu_lease.sh). A failing test
# does not stop the benchmark; the script's exit status is the tests'.
#   scripts/gpu_bench.sh [--out DIR] [--n N] [--runs R]
#     DIR: results (default: $OUT, else bench/results/gpu-run): device.txt, gpu-tests.txt,
#          gpu-bench.md, torch-bench.md
#     N: candidates (default 1000000); R: timed runs per point (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench/results/gpu-run}"
bench_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) [[ $# -ge 2 ]] || { echo "gpu_bench.sh: --out needs a directory" >&2; exit 2; }
           out=$2; shift 2 ;;
    --n|--runs)
      [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] ||
        { echo "gpu_bench.sh: $1 needs a positive integer, got '${2:-}'" >&2; exit 2; }
      bench_args+=("$1" "$2"); shift 2 ;;
    *) echo "gpu_bench.sh: unknown argument '$1' (usage: [--out DIR] [--n N] [--runs R])" >&2
       exit 2 ;;
  esac
done
for f in build/release/tests/hetcache_gpu_tests build/release/bench/hetcache_gpu_bench \
         build/release/libhetcache_cuda.so; do
  [[ -e "$f" ]] || { echo "gpu_bench.sh: $f is missing: build with CUDA first" \
                          "(cmake --preset release -DHETCACHE_CUDA=ON && cmake --build --preset release)" >&2
                     exit 2; }
done
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/device.txt" || true
tests_rc=0
HETCACHE_REQUIRE_GPU=1 build/release/tests/hetcache_gpu_tests >"$out/gpu-tests.txt" 2>&1 || tests_rc=$?
tail -5 "$out/gpu-tests.txt"
build/release/bench/hetcache_gpu_bench "${bench_args[@]}" | tee "$out/gpu-bench.md"
if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  python3 bench/torch_bench.py "${bench_args[@]}" | tee "$out/torch-bench.md"
else
  echo "torch with CUDA not found: torch comparison skipped" | tee "$out/torch-bench.md"
fi
exit "$tests_rc"
