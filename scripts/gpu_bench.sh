#!/usr/bin/env bash
# Everything the GPU tier owes a real GPU, in one call: builds with CUDA (unless the release build
# is already there), runs the GPU tests with HETCACHE_REQUIRE_GPU=1 (no silent skip), then the GPU
# benchmark and torch's mm + topk on the same shapes. Results go to OUT_DIR (default: $OUT, else
# bench/results/gpu-run): gpu-tests.txt, gpu-bench.md, torch-bench.md.
#   scripts/gpu_bench.sh [OUT_DIR] [--n N]      (N: candidates, default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-bench/results/gpu-run}}"
shift || true
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/device.txt"
if [[ ! -x build/release/tests/hetcache_gpu_tests || ! -x build/release/bench/hetcache_gpu_bench ]]; then
  scripts/deps.sh
  cmake --preset release -DHETCACHE_CUDA=ON
  cmake --build --preset release --target hetcache_gpu_tests hetcache_gpu_bench
fi
HETCACHE_REQUIRE_GPU=1 build/release/tests/hetcache_gpu_tests 2>&1 | tee "$out/gpu-tests.txt" | tail -5
build/release/bench/hetcache_gpu_bench "$@" | tee "$out/gpu-bench.md"
if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  python3 bench/torch_bench.py "$@" | tee "$out/torch-bench.md"
else
  echo "torch with CUDA not found: torch comparison skipped" | tee "$out/torch-bench.md"
fi
