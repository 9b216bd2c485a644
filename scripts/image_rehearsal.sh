#!/usr/bin/env bash
# Rehearses docker/Dockerfile's runtime stage where no Docker engine runs (the development
# machines): a minimal Debian 12 root made by debootstrap --variant=minbase (what debian:12-slim is
# made from), `scripts/deps.sh runtime` run inside it, the installed library and command and a
# virtual environment with the Python package copied to /opt/hetcache as the build stage does,
# a system user, and then, as that user: `hetcache --version`, `hetcache demo`, and a search from
# Python. What it proves: the runtime package list is enough for everything the image ships.
#   scripts/image_rehearsal.sh [BUILD_DIR]   (default build/release, built first; the Python
#                                            wheel from build/wheels: scripts/python_test.sh)
# Needs root, Debian's mirror and PyPI (numpy); by hand, not in CI (about 3 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
[[ $(id -u) -eq 0 ]] || { echo "image_rehearsal: needs root (debootstrap, chroot)" >&2; exit 1; }
wheel=$(ls build/wheels/hetcache-*.whl 2>/dev/null | head -1)
if [[ -z $wheel ]]; then
  echo "image_rehearsal: no wheel in build/wheels (run scripts/python_test.sh)" >&2
  exit 1
fi
[[ -x $build/tools/hetcache ]] || { echo "image_rehearsal: no command in $build" >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
  apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

root=$(mktemp -d /tmp/hetcache-image.XXXXXX)
chmod 0755 "$root"  # the root of the tree: every user must reach /usr
cleanup() {
  umount "$root/proc" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
step() { echo "== $*"; }

step "debootstrap --variant=minbase bookworm"
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$root.log" 2>&1 ||
  { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
base=$(du -sm "$root" | cut -f1)

step "scripts/deps.sh runtime (inside)"
cp scripts/deps.sh "$root/tmp/deps.sh"
cp /etc/resolv.conf "$root/etc/resolv.conf"
chroot "$root" /tmp/deps.sh runtime
chroot "$root" sh -c 'rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /tmp/deps.sh'

step "install to /opt/hetcache: cmake --install, a venv with the wheel and numpy"
cmake --install "$build" --prefix "$root/opt/hetcache" >/dev/null
# The build stage makes the venv on debian:12 with the same /usr/bin/python3 the runtime has.
/usr/bin/python3 -m venv "$root/opt/hetcache/venv"
"$root/opt/hetcache/venv/bin/python" -m pip install -q "$wheel"
chroot "$root" useradd --system --create-home --home-dir /var/lib/hetcache \
  --shell /usr/sbin/nologin hetcache
mount -t proc proc "$root/proc"

as_user() {
  chroot --userspec=hetcache:hetcache "$root" /usr/bin/env -i HOME=/var/lib/hetcache \
    PATH=/opt/hetcache/bin:/opt/hetcache/venv/bin:/usr/bin:/bin "$@"
}
step "hetcache --version (as hetcache)"
as_user hetcache --version
step "hetcache demo --runs 1 (as hetcache)"
as_user sh -c 'cd /var/lib/hetcache && hetcache demo --runs 1 --quiet' | tail -25
step "Python: import and search (as hetcache)"
as_user python -c '
import numpy as np, hetcache
rng = np.random.default_rng(1)
c = rng.standard_normal((20000, 64), dtype=np.float32)
ids, scores = hetcache.SimilarityEngine().search(c[:3], c, k=5)
assert list(ids[:, 0]) == [0, 1, 2], ids
print("python search ok:", ids[0].tolist())'
echo "rehearsal passed: base ${base} MiB, image $(du -sm --exclude=proc "$root" | cut -f1) MiB"
