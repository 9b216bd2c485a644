#!/usr/bin/env bash
# A lent GPU machine in one call. Such a machine has the CUDA toolkit, cuBLAS and torch but none of
# the Debian libraries the library links (TBB, RocksDB, hiredis, Boost) and reaches no package
# registry, so the build happens here and travels:
#   scripts/gpu_lease.sh pack         here: copies the release build's programs, the GPU plugin and
#                                     the Debian libraries and redis-server they need into
#                                     .gpu-bundle/ (git-ignored; carry it to the machine)
#   scripts/gpu_lease.sh run [SECS]   there: the GPU tests with HETCACHE_REQUIRE_GPU=1, the
#                                     engine and scheduler suites whole, the tests of the others
#                                     named for the GPU or placement, the GPU benchmark, torch's
#                                     mm + topk, `hetcache demo` and `plan` on the GPU, the whole C++
#                                     suite while SECS (default 150; 0: not run) allow; everything
#                                     lands in $OUT (default bench/results/gpu-run)
# With AB_PLUGIN=FILE (a libhetcache_cuda.so of the same headers, e.g. built before a kernel
# change), the benchmark runs twice with each plugin, alternated, the other's tables in
# gpu-bench-ab.md: a before / after in one lease (on a short matrix: k = 10 and 1000, f32 and bf16,
# device-resident). BENCH_ARGS="--n N ..." passes its words to every hetcache_gpu_bench run.
# The exit status of `run` is 0 only when every GPU test passed.
set -uo pipefail
cd "$(dirname "$0")/.."
bundle=.gpu-bundle

pack() {
  set -e
  local build=build/release
  for f in $build/libhetcache_cuda.so $build/tests/hetcache_gpu_tests \
           $build/bench/hetcache_gpu_bench $build/tools/hetcache; do
    [[ -e $f ]] || { echo "gpu_lease.sh: $f is missing: build with CUDA first" \
                          "(cmake --preset release -DHETCACHE_CUDA=ON && cmake --build --preset release)" >&2
                     exit 2; }
  done
  rm -rf $bundle
  mkdir -p $bundle/release/tests $bundle/release/bench $bundle/release/tools $bundle/lib $bundle/bin
  cp $build/libhetcache_cuda.so $bundle/release/
  cp $build/tests/hetcache_*tests $build/tests/hetcache_crash_writer $build/tests/*.so \
     $bundle/release/tests/
  [[ -d $build/tests/plugin_dependency ]] && cp -r $build/tests/plugin_dependency $bundle/release/tests/
  cp $build/bench/hetcache_gpu_bench $bundle/release/bench/
  cp $build/tools/hetcache $bundle/release/tools/
  cp /usr/bin/redis-server /usr/bin/redis-cli $bundle/bin/
  # Every library the programs load except the C library, the C++ runtime (the machine's is as new
  # or newer) and CUDA's (the machine's own driver and cuBLAS).
  local files
  files=$(find $bundle/release $bundle/bin -type f -perm -u+x)
  for f in $files; do ldd "$f" 2>/dev/null; done | awk '$3 ~ /^\// {print $3}' | sort -u |
    grep -v -E '/(libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+|ld-linux[^/]*)\.so|libcu' |
    while read -r lib; do cp -L "$lib" $bundle/lib/; done
  strip --strip-unneeded $files $bundle/lib/* 2>/dev/null || true
  cp bench/torch_bench.py $bundle/
  realpath $build >$bundle/built_at  # the tests name the command by its path in the build
  du -sh $bundle
}

run() {
  local budget=${1:-150}
  local out=${OUT:-bench/results/gpu-run}
  mkdir -p "$out"
  local here=$PWD
  [[ -d $bundle/release ]] || { echo "gpu_lease.sh: no $bundle: run 'pack' here and carry it" >&2
                                exit 2; }
  chmod -R u+x $bundle/release $bundle/bin
  # cuBLAS: the toolkit's, else the one torch's wheels brought.
  local cublas_dir machine_ld=${LD_LIBRARY_PATH:-}
  cublas_dir=$(find /usr/local/cuda/ /opt -name 'libcublas.so.13' 2>/dev/null | head -1)
  export LD_LIBRARY_PATH=$here/$bundle/lib:${cublas_dir:+$(dirname "$cublas_dir")}${machine_ld:+:$machine_ld}
  export PATH=$here/$bundle/bin:$PATH
  export XDG_CACHE_HOME=$(mktemp -d)  # a fresh calibration, as on a new machine
  # The tests name the command and the crash writer by the path they were built at.
  local built_at
  built_at=$(cat $bundle/built_at)
  if [[ ! -e $built_at/tools/hetcache ]]; then
    mkdir -p "$(dirname $built_at)" && ln -sfn "$here/$bundle/release" $built_at
  fi
  local rel=$here/$bundle/release
  {
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
    grep -m1 'model name' /proc/cpuinfo; nproc
    for f in $rel/tests/hetcache_gpu_tests $rel/libhetcache_cuda.so $rel/tools/hetcache; do
      ldd "$f" | grep 'not found' && echo "MISSING libraries for $f"
    done
    echo "cuBLAS: ${cublas_dir:-not found}"
    $rel/tools/hetcache --version
  } 2>&1 | tee "$out/device.txt"

  echo "== GPU tests (HETCACHE_REQUIRE_GPU=1)"
  local rc=0
  HETCACHE_REQUIRE_GPU=1 timeout 150 $rel/tests/hetcache_gpu_tests >"$out/gpu-tests.txt" 2>&1 || rc=$?
  grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|tests ran' "$out/gpu-tests.txt" | tail -20
  echo "== GPU-related tests of the other suites (HETCACHE_REQUIRE_GPU=1)"
  local filter='*Gpu*:*GPU*:Resources.*:CachePlacement.*:ApiSurface.*:SchedulerStrategies.*:*Placement*'
  for t in hetcache_tests hetcache_scheduler_tests hetcache_cache_tests hetcache_cli_tests; do
    echo "--- $t"
    # The first two whole: seconds, and their models see this machine's cores.
    local only=$filter
    [[ $t == hetcache_tests || $t == hetcache_scheduler_tests ]] && only='*'
    HETCACHE_REQUIRE_GPU=1 timeout 60 $rel/tests/$t --gtest_filter="$only" 2>&1 |
      grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|tests ran|Failure|error' | head -30 ||
      true
  done 2>&1 | tee "$out/gpu-related-tests.txt"
  grep -q '^\[  FAILED  \]' "$out/gpu-related-tests.txt" && rc=1

  echo "== GPU benchmark"
  local bench_args
  read -r -a bench_args <<<"${BENCH_ARGS:-}"
  if [[ -n ${AB_PLUGIN:-} ]]; then
    # Four runs: a short matrix unless BENCH_ARGS says otherwise.
    [[ -n ${BENCH_ARGS:-} ]] || bench_args=(--ks 10,1000 --precisions f32,bf16 --modes resident)
    : >"$out/gpu-bench.md"
    : >"$out/gpu-bench-ab.md"
    for round in 1 2; do
      timeout 150 $rel/bench/hetcache_gpu_bench "${bench_args[@]}" 2>&1 | tee -a "$out/gpu-bench.md"
      HETCACHE_GPU_PLUGIN=$here/$AB_PLUGIN timeout 150 $rel/bench/hetcache_gpu_bench \
        "${bench_args[@]}" 2>&1 | tee -a "$out/gpu-bench-ab.md"
    done
  else
    timeout 400 $rel/bench/hetcache_gpu_bench "${bench_args[@]}" 2>&1 | tee "$out/gpu-bench.md"
  fi
  echo "== torch"
  LD_LIBRARY_PATH=$machine_ld timeout 120 python3 $bundle/torch_bench.py 2>&1 | tee "$out/torch-bench.md"
  echo "== demo"
  timeout 60 $rel/tools/hetcache demo --quiet >"$out/demo.md" 2>&1
  tail -25 "$out/demo.md"
  echo "== plan (Adaptive, this machine's calibration)" | tee -a "$out/demo.md"
  for shape in "--queries 1 --items 1000000" "--queries 16 --items 100000" \
               "--queries 256 --items 1000000"; do
    # shellcheck disable=SC2086
    timeout 60 $rel/tools/hetcache plan --strategy adaptive $shape 2>&1 | tee -a "$out/demo.md"
  done

  if [[ $budget == 0 ]]; then
    echo "GPU tests exit status: $rc"
    return $rc
  fi
  echo "== the whole C++ suite, in parallel, for ${budget} s"
  local logs
  logs=$(mktemp -d)
  for t in $rel/tests/hetcache_*tests; do
    HETCACHE_REQUIRE_GPU=1 timeout "$budget" "$t" >"$logs/$(basename "$t").txt" 2>&1 &
  done
  wait
  for f in "$logs"/*.txt; do
    echo "--- $(basename "$f"): $(grep -E 'tests? from .* test suites? ran' "$f" | tail -1)"
    grep -E '^\[  FAILED  \]' "$f" | sort -u | head -20
    grep -q -E "test suites? ran" "$f" || echo "    (did not finish in ${budget} s; last: $(grep '^\[ RUN' "$f" | tail -1))"
  done 2>&1 | tee "$out/suite.txt"
  tar -czf "$out/suite-logs.tar.gz" -C "$logs" .
  echo "GPU tests exit status: $rc"
  return $rc
}

case "${1:-}" in
  pack) pack ;;
  run) shift; run "$@" ;;
  *) echo "usage: scripts/gpu_lease.sh pack | run [SECONDS]" >&2; exit 2 ;;
esac
