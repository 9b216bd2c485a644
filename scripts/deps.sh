#!/usr/bin/env bash
# Installs whatever hetcache needs from Debian 12 packages, and nothing when all is present.
#   scripts/deps.sh          build + test dependencies
#   scripts/deps.sh bench    also the peers of the benchmarks (OpenBLAS, FAISS, LMDB)
# Idempotent and quiet: it asks dpkg first and only calls apt-get for what is missing.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git curl xz-utils
  libtbb-dev libboost-fiber-dev libboost-context-dev
  librocksdb-dev libxxhash-dev libhiredis-dev redis-server redis-tools
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev gnuplot-nox
  clang-14 libclang-rt-14-dev   # the fuzzers (libFuzzer, sanitizers): scripts/fuzz.sh
  python3-dev python3-venv      # the Python package: scripts/python_test.sh
)
if [[ "${1:-}" == "bench" ]]; then
  packages+=(libopenblas-dev libfaiss-dev liblmdb-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed'; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
