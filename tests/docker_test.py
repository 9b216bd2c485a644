#!/usr/bin/env python3
"""The Docker images agree with the scripts and the tree (no engine runs here to build them).

  docker_test.py SOURCE_DIR COMMAND [PLUGIN]

- every file a Dockerfile COPYs from the build context exists, and .dockerignore keeps the build
  trees and .git out of the context;
- every `scripts/deps.sh MODE...` a Dockerfile runs names modes deps.sh accepts, the build list is
  part of the test list (what the README's commands install builds what the image builds), and
  every package of the runtime list is a real Debian 12 package (installed here);
- the runtime stage runs `hetcache` as a non-root user;
- the runtime list covers every shared library the built command (and the Python module, when
  built, and the GPU plugin, when built) needs: each NEEDED entry resolves to a file that belongs
  to a package of the runtime list, and libcublas*.so.N to cuda-runtime's libcublas-N-*;
- the CUDA release deps.sh installs is the toolkit this build used.
"""
import glob
import os
import re
import subprocess
import sys

SOURCE = os.path.abspath(sys.argv[1])
COMMAND = sys.argv[2]
PLUGIN = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
DEPS = os.path.join(SOURCE, "scripts", "deps.sh")
failures = []


def fail(message):
    failures.append(message)
    print("FAIL:", message)


def deps(*modes):
    out = subprocess.run([DEPS, *modes, "--list"], capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"deps.sh {' '.join(modes)} --list: exit {out.returncode}: {out.stderr.strip()}")
        return []
    return out.stdout.split()


def instructions(path):
    """(instruction, arguments) per Dockerfile instruction, continuation lines joined."""
    text = open(path).read()
    text = re.sub(r"\\\n", " ", text)
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        yield word.upper(), rest.strip()


dockerfiles = sorted(glob.glob(os.path.join(SOURCE, "docker", "Dockerfile*")))
if len(dockerfiles) < 2:
    fail(f"expected the CPU and the CUDA Dockerfile in docker/, found {dockerfiles}")

ignored = open(os.path.join(SOURCE, ".dockerignore")).read().split()
for needed in ("build/", ".git/"):
    if needed not in ignored:
        fail(f".dockerignore does not exclude {needed} (COPY . . would send it to the engine)")

for dockerfile in dockerfiles:
    name = os.path.relpath(dockerfile, SOURCE)
    stage = None
    runtime = {"user": None, "entrypoint": None}
    stages = []
    for word, rest in instructions(dockerfile):
        if word == "FROM":
            m = re.search(r"\bAS\s+(\S+)", rest, re.IGNORECASE)
            stage = m.group(1) if m else None
            stages.append(stage)
        elif word == "COPY":
            args = rest.split()
            if any(a.startswith("--from") for a in args):
                continue
            sources = [a for a in args if not a.startswith("--")][:-1]
            for src in sources:
                if not glob.glob(os.path.join(SOURCE, src)):
                    fail(f"{name}: COPY {src}: no such file in the repository")
        elif word == "RUN":
            for m in re.finditer(r"deps\.sh((?:\s+[a-z][a-z-]*)*)", rest):
                modes = m.group(1).split()
                if deps(*modes) == []:
                    fail(f"{name}: deps.sh {' '.join(modes)} lists nothing")
        elif stage == "runtime" and word == "USER":
            runtime["user"] = rest
        elif stage == "runtime" and word == "ENTRYPOINT":
            runtime["entrypoint"] = rest
    if "runtime" not in stages or stages[-1] != "runtime":
        fail(f"{name}: the last stage (the default image) must be 'runtime', got {stages}")
    if runtime["user"] in (None, "root", "0", "0:0"):
        fail(f"{name}: the runtime stage runs as {runtime['user'] or 'root (no USER)'}")
    if runtime["entrypoint"] != '["hetcache"]':
        fail(f"{name}: the runtime entrypoint is {runtime['entrypoint']}, not [\"hetcache\"]")

build, test, runtime_list = set(deps("build")), set(deps("test")), deps("runtime")
if not build <= test:
    fail(f"deps.sh build installs what test does not: {sorted(build - test)}")
for package in runtime_list:
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                            capture_output=True, text=True).stdout
    if "ok installed" not in status:
        fail(f"runtime package {package} is not installed here (a misspelt or foreign name?)")


def owner(path):
    """The Debian package a file belongs to, trying the path as linked and as resolved."""
    candidates = {path, os.path.realpath(path)}
    for p in list(candidates):  # Debian 12 registers some files under /lib, some under /usr/lib
        if p.startswith("/usr/"):
            candidates.add(p[len("/usr"):])
        else:
            candidates.add("/usr" + p)
    for p in candidates:
        out = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":")[0].strip()
    return None


def check_links(binary, allowed, cuda_runtime):
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                        subprocess.run(["readelf", "-d", binary], capture_output=True,
                                       text=True, check=True).stdout)
    resolved = dict(re.findall(r"^\s*(\S+) => (\S+)",
                               subprocess.run(["ldd", binary], capture_output=True,
                                              text=True).stdout, re.MULTILINE))
    if not needed:
        fail(f"{binary}: readelf found no NEEDED entries")
    for soname in needed:
        if soname.startswith("ld-linux"):
            continue  # the dynamic loader: libc6
        m = re.match(r"libcublas(?:Lt)?\.so\.(\d+)$", soname)
        if m:
            if not any(p.startswith(f"libcublas-{m.group(1)}-") for p in cuda_runtime):
                fail(f"{binary} needs {soname}; deps.sh cuda-runtime lists {cuda_runtime}")
            else:
                print(f"ok: {os.path.basename(binary)} needs {soname} from cuda-runtime")
            continue
        path = resolved.get(soname)
        package = owner(path) if path else None
        if package is None:
            fail(f"{binary} needs {soname} ({path}), which no Debian package here owns")
        elif package.split(":")[0] not in allowed:
            fail(f"{binary} needs {soname} from {package}, which deps.sh runtime does not list")
        else:
            print(f"ok: {os.path.basename(binary)} needs {soname} from {package}")


cuda_runtime = deps("cuda-runtime")
check_links(COMMAND, set(runtime_list), cuda_runtime)
modules = glob.glob(os.path.join(SOURCE, "build", "venv", "lib", "python3*", "site-packages",
                                 "hetcache", "_core*.so"))
for module in modules:
    check_links(module, set(runtime_list), cuda_runtime)
if not modules:
    print("note: the Python module is not built yet (scripts/python_test.sh); not checked")
if PLUGIN:
    check_links(PLUGIN, set(runtime_list), cuda_runtime)
    nvcc = subprocess.run(["nvcc", "--version"], capture_output=True, text=True)
    if nvcc.returncode == 0:
        m = re.search(r"release (\d+)\.(\d+)", nvcc.stdout)
        release = f"{m.group(1)}-{m.group(2)}"
        if not all(p.endswith(release) for p in deps("cuda-build") + cuda_runtime):
            fail(f"this build used CUDA {release}; deps.sh installs "
                 f"{deps('cuda-build') + cuda_runtime}")
else:
    print("note: no GPU plugin in this build; its libraries are not checked")

if failures:
    print(f"{len(failures)} problem(s)")
    sys.exit(1)
print("Dockerfiles, deps.sh and the built binaries agree")
