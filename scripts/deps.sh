#!/usr/bin/env bash
# Installs whatever hetcache needs from Debian 12 packages, and nothing when all is present. The
# one list of packages: the README's commands, the Docker images and CI all take theirs from here.
#   scripts/deps.sh [MODE...] [--list]
#     (none), test  build + test dependencies (what the README's commands install)
#     build         what building the library, the command and the Python package needs
#     bench         test + the peers of the benchmarks (OpenBLAS, FAISS, LMDB)
#     runtime       what the installed command and Python package need to run, no compiler
#                   (the runtime stage of docker/Dockerfile*); tests/docker_test.sh checks it
#                   covers every library they link
#     cuda-build    NVIDIA's CUDA compiler, CUB and cuBLAS headers, from NVIDIA's Debian 12
#                   repository, which this mode adds first (docker/Dockerfile.cuda's build stage)
#     cuda-runtime  cuBLAS only, from the same repository (docker/Dockerfile.cuda's runtime stage)
#     --list        print the packages, one per line, and install nothing
# Idempotent and quiet: it asks dpkg first and only calls apt-get for what is missing.
set -euo pipefail

build=(
  g++ cmake ninja-build pkg-config
  libtbb-dev libboost-fiber-dev libboost-context-dev
  librocksdb-dev libxxhash-dev libhiredis-dev libcli11-dev
  python3-dev python3-venv      # the Python package (pip builds it; nanobind comes from PyPI)
)
test=(
  "${build[@]}" git curl xz-utils
  redis-server redis-tools libgtest-dev libgmock-dev libbenchmark-dev gnuplot-nox
  clang-14 libclang-rt-14-dev   # the fuzzers (libFuzzer, sanitizers): scripts/fuzz.sh
  ccache                        # scripts/test.sh: the Python build reuses the Release objects
)
bench=("${test[@]}" libopenblas-dev libfaiss-dev liblmdb-dev libdnnl-dev)
# The shared libraries the command and the Python module are linked against (readelf -d), and the
# interpreter of the Python package's virtual environment.
runtime=(
  libc6 libgcc-s1 libstdc++6 libtbb12 librocksdb7.8 libhiredis0.14
  libboost-fiber1.74.0 libboost-context1.74.0 python3
)
# The CUDA release the GPU plugin is built with (tests/docker_test.sh checks it is the toolkit's).
cuda_version=13-0
cuda_build=("cuda-nvcc-$cuda_version" "cuda-cudart-dev-$cuda_version" "cuda-cccl-$cuda_version"
            "libcublas-dev-$cuda_version")
cuda_runtime=("libcublas-$cuda_version")
nvidia_repo=https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64

packages=()
list=0
nvidia=0
modes=()
for arg in "$@"; do
  case "$arg" in
    --list) list=1 ;;
    test | build | bench | runtime | cuda-build | cuda-runtime) modes+=("$arg") ;;
    *) echo "deps.sh: unknown mode '$arg' (test, build, bench, runtime, cuda-build," \
            "cuda-runtime, --list)" >&2
       exit 2 ;;
  esac
done
[[ ${#modes[@]} -eq 0 ]] && modes=(test)
for mode in "${modes[@]}"; do
  case "$mode" in
    test) packages+=("${test[@]}") ;;
    build) packages+=("${build[@]}") ;;
    bench) packages+=("${bench[@]}") ;;
    runtime) packages+=("${runtime[@]}") ;;
    cuda-build) packages+=("${cuda_build[@]}"); nvidia=1 ;;
    cuda-runtime) packages+=("${cuda_runtime[@]}"); nvidia=1 ;;
  esac
done
if [[ $list -eq 1 ]]; then
  printf '%s\n' "${packages[@]}" | awk '!seen[$0]++'
  exit 0
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
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
keyring_installed() {
  dpkg-query -W -f='${Status}' cuda-keyring 2>/dev/null | grep -q 'ok installed'
}
if [[ $nvidia -eq 1 ]] && ! keyring_installed; then
  echo "deps.sh: adding NVIDIA's CUDA repository ($nvidia_repo)"
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends ca-certificates curl >/dev/null
  keyring=$(mktemp --suffix=.deb)
  curl -fsSL -o "$keyring" "$nvidia_repo/cuda-keyring_1.1-1_all.deb"
  "${sudo_cmd[@]}" dpkg -i "$keyring" >/dev/null
  rm -f "$keyring"
  "${sudo_cmd[@]}" apt-get update -qq
fi
echo "deps.sh: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
