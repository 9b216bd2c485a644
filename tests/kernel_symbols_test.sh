#!/usr/bin/env bash
# Each per-ISA kernel object must define no global symbol but its kernel tables (one, or two for
# the AMX units: bf16 and int8) and no weak ones: a weak (inline/template) copy compiled with
# -mavx512f could be picked by the linker for baseline code and crash older CPUs.
# Usage: kernel_symbols_test.sh OBJECT...
set -euo pipefail
checked=0
for obj in "$@"; do
  case "$obj" in *kernels_*.o) ;; *) continue ;; esac
  # Sanitizer builds add instrumentation markers (__odr_asan.*) and a weak data reference to the
  # C++ personality routine; neither is code compiled for the ISA.
  ignore='DW\.ref\.__gxx_personality_v0|__odr_asan|__asan_|__ubsan_|__tsan_'
  weak=$(nm -C "$obj" | grep -E ' [WVuv] ' | grep -Ev "$ignore" || true)
  globals=$(nm -C --defined-only --extern-only "$obj" | awk '{$1=$2=""; print substr($0,3)}' |
            grep -Ev "$ignore" || true)
  count=$(printf '%s\n' "$globals" | grep -c . || true)
  tables=$(printf '%s\n' "$globals" | grep -c -E '^hetcache::cpu::k[A-Za-z0-9]*Kernels$' || true)
  if [[ -n "$weak" || "$count" -lt 1 || "$count" -gt 2 || "$tables" -ne "$count" ]]; then
    echo "FAIL $obj"; echo "globals: $globals"; echo "weak: $weak"; exit 1
  fi
  echo "ok   $(basename "$obj"): $(printf '%s ' $globals)"
  checked=$((checked + 1))
done
[[ $checked -ge 1 ]] || { echo "no kernel objects given"; exit 1; }
