#!/usr/bin/env bash
# Prepares the two libraries the tsan preset builds itself, so ThreadSanitizer sees everything
# that synchronises our threads:
#  - Boost.Fiber + Boost.Context 1.81 sources (compiled by the tsan preset with the ucontext back
#    end and BOOST_USE_TSAN): Debian's Boost 1.74 switches fiber stacks in assembly TSan cannot
#    follow, and Debian 12 ships no Boost built for TSan;
#  - oneTBB 2021.8 (Debian's version) built with -fsanitize=thread: Debian's libtbb is not
#    instrumented, so TBB's task hand-offs are invisible and every parallel_for looks racy.
# Both come from Debian's source tarballs, checked against their SHA-256. Other presets link
# Debian's packages.
#   scripts/tsan-deps.sh [DIR]    (default: build/tsan-deps; idempotent)
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-build/tsan-deps}"
pool=http://deb.debian.org/debian/pool/main
mkdir -p "$dest"

fetch() {  # fetch URL SHA256 FILE
  if [[ -f "$3" ]] && echo "$2  $3" | sha256sum --check --status; then return; fi
  echo "tsan-deps: downloading $1" >&2
  curl -fsSL -o "$3" "$1"
  echo "$2  $3" | sha256sum --check --status ||
    { echo "tsan-deps: $3 does not match its SHA-256" >&2; rm -f "$3"; exit 1; }
}

boost="$dest/boost-1.81"
if [[ ! -f "$boost/.complete" ]]; then
  mkdir -p "$boost"
  fetch "$pool/b/boost1.81/boost1.81_1.81.0.orig.tar.xz" \
    449afecf5ef98edc0a46826cde6af98d1fb95c2e92962fa8c9e3eb1e8a2928ec "$boost/src.tar.xz"
  echo "tsan-deps: extracting Boost headers and the fiber/context sources" >&2
  rm -rf "$boost/boost" "$boost/include"
  tar -xJf "$boost/src.tar.xz" -C "$boost" --wildcards 'boost/libs/*/include/*' \
    'boost/libs/context/src/*' 'boost/libs/fiber/src/*'
  # One include tree, as Boost's own `b2 headers` lays it out.
  mkdir -p "$boost/include"
  find "$boost/boost/libs" -maxdepth 3 -type d -name include -print0 |
    while IFS= read -r -d '' dir; do cp -r "$dir/." "$boost/include/"; done
  rm -f "$boost/src.tar.xz"
  touch "$boost/.complete"
fi

tbb="$dest/onetbb"
if [[ ! -f "$tbb/.complete" ]]; then
  work="$dest/onetbb-build"
  mkdir -p "$work"
  fetch "$pool/o/onetbb/onetbb_2021.8.0.orig.tar.xz" \
    7e9111b8bb59c8800bf6d0b06afe7b0891937443d2dae1ee1101c8e2ede6a7ef "$work/src.tar.xz"
  echo "tsan-deps: building oneTBB with -fsanitize=thread" >&2
  tar -xJf "$work/src.tar.xz" -C "$work"
  cmake -S "$work/oneTBB-2021.8.0" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTBB_TEST=OFF -DTBB_EXAMPLES=OFF -DTBB_STRICT=OFF -DTBB_SANITIZE=thread \
    -DCMAKE_INSTALL_PREFIX="$(realpath "$tbb")" >"$work/configure.log"
  cmake --build "$work/build" >"$work/build.log"
  cmake --install "$work/build" >"$work/install.log"
  rm -rf "$work"
  touch "$tbb/.complete"
fi
echo "tsan-deps: ready in $dest" >&2
