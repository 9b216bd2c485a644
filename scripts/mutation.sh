#!/usr/bin/env bash
# Mutation check: applies each deliberate bug of tests/mutation/mutations.tsv, alone, to a scratch
# copy of HEAD, builds only the target that runs the tests meant to catch it, runs them, and
# prints a table of caught / survived. A bug whose text no longer appears in its file is reported
# as "stale" (the list needs updating), never as caught.
#   scripts/mutation.sh [NAME...]      all mutations, or only those named
# Needs what scripts/test.sh needs (and clang-14 for the fuzz targets); takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scratch=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$scratch/src" >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT
git worktree add --detach "$scratch/src" HEAD >/dev/null 2>&1
cd "$scratch/src"
export BUILD="$scratch/src/build/mutation"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHETCACHE_BUILD_BENCH=OFF \
      -DHETCACHE_CUDA=OFF >/dev/null
cmake --build "$BUILD" >/dev/null  # every test target once; each mutation then rebuilds its own
wanted=("$@")
caught=0 survived=0 stale=0
printf '| mutation | file | result |\n|---|---|---|\n'
while IFS=$'\t' read -r name file from to target command; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  if [[ ${#wanted[@]} -gt 0 && ! " ${wanted[*]} " == *" $name "* ]]; then continue; fi
  [[ "$to" == "(nothing)" ]] && to=""
  cp "$file" "$scratch/original"
  # Literal replacement of the first occurrence (\n in the list is a newline).
  FROM="$from" TO="$to" perl -0pi -e 'my $f = $ENV{FROM}; my $t = $ENV{TO}; s/\\n/\n/g for ($f, $t);
                                     s/\Q$f\E/$t/ or exit 3' "$file" || {
    printf '| %s | %s | **stale**: the text is gone |\n' "$name" "$file"; stale=$((stale + 1)); continue; }
  result=survived
  if [[ "$target" == fuzz ]]; then
    build_ok=$(scripts/fuzz.sh build >"$scratch/build.log" 2>&1 && echo yes || echo no)
  else
    build_ok=$(cmake --build "$BUILD" --target "$target" >"$scratch/build.log" 2>&1 && echo yes ||
               echo no)
  fi
  if [[ "$build_ok" == no ]]; then
    # A bug that does not compile proves nothing about the tests: the list needs fixing.
    result="**broken**: does not build ($(grep -m1 'error' "$scratch/build.log" | cut -c1-80))"
    stale=$((stale + 1))
  elif ! timeout 600 bash -c "$command" >"$scratch/log" 2>&1; then
    result=caught
  fi
  case "$result" in
    survived) survived=$((survived + 1)) ;;
    caught) caught=$((caught + 1)) ;;
  esac
  printf '| %s | %s | %s |\n' "$name" "$file" "$result"
  cp "$scratch/original" "$file"
done <"$root/tests/mutation/mutations.tsv"
echo
echo "caught $caught, survived $survived, stale or broken $stale"
[[ $survived -eq 0 && $stale -eq 0 ]]
