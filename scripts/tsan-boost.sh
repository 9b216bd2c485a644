#!/usr/bin/env bash
# Prepares the Boost.Fiber + Boost.Context sources that the tsan preset compiles itself.
#
# Why: Debian's Boost 1.74 switches fiber stacks with assembly (fcontext) that ThreadSanitizer
# cannot see, so every fiber test crashes or reports nonsense under TSan. Boost >= 1.76 can switch
# with ucontext and tell TSan about each switch (BOOST_USE_UCONTEXT + BOOST_USE_TSAN); Debian 12
# ships no such build, so the tsan preset compiles Boost.Fiber and Boost.Context 1.81 from the
# Debian source tarball (checked against its SHA-256) with those switches. Only the tsan preset
# uses this; every other build links Debian's packages.
#
#   scripts/tsan-boost.sh [DIR]    (default: build/boost-1.81-tsan; idempotent)
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-build/boost-1.81-tsan}"
url=http://deb.debian.org/debian/pool/main/b/boost1.81/boost1.81_1.81.0.orig.tar.xz
sha256=449afecf5ef98edc0a46826cde6af98d1fb95c2e92962fa8c9e3eb1e8a2928ec

if [[ -f "$dest/.complete" ]]; then exit 0; fi
mkdir -p "$dest"
tarball="$dest/boost1.81.tar.xz"
if [[ ! -f "$tarball" ]] || ! echo "$sha256  $tarball" | sha256sum --check --status; then
  echo "tsan-boost: downloading $url" >&2
  curl -fsSL -o "$tarball" "$url"
  echo "$sha256  $tarball" | sha256sum --check --status ||
    { echo "tsan-boost: $tarball does not match its SHA-256" >&2; exit 1; }
fi
echo "tsan-boost: extracting headers and the fiber/context sources" >&2
rm -rf "$dest/boost" "$dest/include"
tar -xJf "$tarball" -C "$dest" --wildcards 'boost/libs/*/include/*' 'boost/libs/context/src/*' \
  'boost/libs/fiber/src/*'
# One include tree, as Boost's own `b2 headers` lays it out.
mkdir -p "$dest/include"
find "$dest/boost/libs" -maxdepth 3 -type d -name include -print0 |
  while IFS= read -r -d '' dir; do cp -r "$dir/." "$dest/include/"; done
rm -f "$tarball"
touch "$dest/.complete"
echo "tsan-boost: ready in $dest" >&2
