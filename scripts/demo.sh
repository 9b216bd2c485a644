#!/usr/bin/env bash
# Installs what is missing, builds Release and runs the main job (arguments go to the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target hetcache_demo
exec build/release/tools/hetcache_demo "$@"
