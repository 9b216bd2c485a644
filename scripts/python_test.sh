#!/usr/bin/env bash
# Builds the Python package into a virtual environment of its own (build/venv) the way a user
# does -- `pip install .` -- and runs its tests. Called by scripts/test.sh after the C++ suites.
#   PYTHON=python3.12 scripts/python_test.sh   another interpreter (default: Debian's
#                                              /usr/bin/python3 when present, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-}
if [[ -z $python ]]; then
  # The interpreter a fresh Debian 12 machine has (its pip is 23.0.1), rather than whatever
  # python3 is first on this machine's PATH.
  if [[ -x /usr/bin/python3 ]]; then python=/usr/bin/python3; else python=python3; fi
fi
venv=build/venv
base_prefix() { "$1" -c 'import sys; print(sys.base_prefix)'; }
if [[ -x $venv/bin/python && $(base_prefix "$venv/bin/python") != $(base_prefix "$python") ]]; then
  rm -rf "$venv"  # made from another interpreter
fi
if [[ ! -x $venv/bin/python ]]; then
  "$python" -m venv "$venv"
fi
# Quiet when everything is present already: pip does not reach the index then.
"$venv/bin/python" -m pip install -q -r python/requirements-test.txt
# No build isolation: the build uses the venv's nanobind and scikit-build-core, and keeps its
# CMake tree in build/python (a second run recompiles only what changed). Warnings are errors
# here as in the C++ presets.
"$venv/bin/python" -m pip install -q --no-build-isolation \
  --config-settings=cmake.define.HETCACHE_WERROR=ON .
# `pip wheel .` works too (the same build tree: seconds); the wheel is checked for its stubs.
rm -rf build/wheels
"$venv/bin/python" -m pip wheel -q --no-build-isolation --no-deps -w build/wheels \
  --config-settings=cmake.define.HETCACHE_WERROR=ON .
"$venv/bin/python" - <<'PY'
import glob, zipfile
[wheel] = glob.glob("build/wheels/hetcache-*.whl")
names = set(zipfile.ZipFile(wheel).namelist())
missing = {"hetcache/_core.pyi", "hetcache/py.typed", "hetcache/__init__.py", "hetcache/dask.py"} - names
assert not missing, f"{wheel} lacks {sorted(missing)}"
assert any(n.startswith("hetcache/_core.") and n.endswith(".so") for n in names), wheel
PY
# From the tests' folder, so `import hetcache` is the installed package, not python/hetcache.
cd python/tests
"../../$venv/bin/python" -m pytest -q -p no:cacheprovider .
