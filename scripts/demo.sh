#!/usr/bin/env bash
# Installs what is missing, builds Release and runs the main job, `hetcache demo` (arguments go
# to it: --runs N, --db DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target hetcache_cli
exec build/release/tools/hetcache demo "$@"
