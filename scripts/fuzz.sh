#!/usr/bin/env bash
# The libFuzzer targets of tests/fuzz (every parser of untrusted bytes), built with clang-14 under
# AddressSanitizer + UndefinedBehaviorSanitizer.
#   scripts/fuzz.sh build                 configure and build them into build/fuzz
#   scripts/fuzz.sh run SECONDS [TARGET]  run each target (or one) for SECONDS on its seed corpus
#                                         (tests/fuzz/corpus/<target>; new inputs go to a scratch
#                                         copy), printing execs and coverage; a crash, leak or hang
#                                         fails with the reproducer's path
# scripts/test.sh runs each for 30 s (ctest tests Fuzz.*); a longer run is scripts/fuzz.sh run 600.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/fuzz
targets=(fuzz_vector_file fuzz_value_format fuzz_redis_reply)
case "${1:-}" in
  build)
    CXX=clang++-14 cmake -S tests/fuzz -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" >/dev/null
    ;;
  run)
    seconds="${2:?seconds}"
    [[ -n "${3:-}" ]] && targets=("$3")
    for t in "${targets[@]}"; do
      [[ -x "$build/$t" ]] || { echo "fuzz.sh: $build/$t missing: run scripts/fuzz.sh build"; exit 1; }
      scratch=$(mktemp -d)
      artifacts=$(mktemp -d)
      log="$scratch.log"
      status=0
      # -timeout: an input running 10 s is a hang; -rss_limit_mb: one using 2 GiB is a leak or a
      # blow-up. Crashes, leaks (LeakSanitizer) and hangs all end the run with a reproducer.
      "$build/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$scratch" "tests/fuzz/corpus/$t" >"$log" 2>&1 || status=$?
      execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
      cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
      if [[ $status -ne 0 ]]; then
        tail -40 "$log"
        echo "$t: FAILED after $execs execs; reproducer: $(ls "$artifacts"/* 2>/dev/null | head -1)"
        exit 1
      fi
      echo "$t: $execs execs in ${seconds} s, coverage $cov edges, no crash, leak or hang"
      rm -rf "$scratch" "$log" "$artifacts"
    done
    ;;
  *)
    echo "usage: scripts/fuzz.sh build | run SECONDS [TARGET]" >&2
    exit 1
    ;;
esac
