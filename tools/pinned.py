#!/usr/bin/env python3
"""Print ``name==version`` of each named package as pyproject.toml pins it: the one place the project's
versions are written (env.sh, tools/gpu_env.sh and benchmarks/benchmark_gpu.sh read them here).

    python tools/pinned.py torch weaver-core      # torch==2.13.0 weaver-core==0.5.3

A package that pyproject.toml does not pin (a dependency of a pinned one, e.g. awkward-cpp) gets the version
installed in the running Python: after ``source env.sh``, the one pip resolved from the pins. Standard library
only and Python 3.10 too (env.sh runs it before the project is installed).
"""

import re
import sys
from importlib import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
PIN = re.compile(r'"([A-Za-z0-9._-]+)==([^"\s;]+)"')  # a requirement string "name==version"


def canonical(name):
    """The name as pip compares names (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(pyproject_text):
    """{canonical name: "name==version"} of every exact pin in pyproject.toml."""
    return {canonical(name): f"{name}=={version}" for name, version in PIN.findall(pyproject_text)}


def requirement(name, pinned):
    """``name==version``: the pin of pyproject.toml, else the installed version; None when neither."""
    if canonical(name) in pinned:
        return pinned[canonical(name)]
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return None


def main(argv=None):
    names = sys.argv[1:] if argv is None else argv
    if not names:
        sys.exit("usage: python tools/pinned.py PACKAGE [PACKAGE ...]")
    pinned = pins(PYPROJECT.read_text())
    requirements = [requirement(name, pinned) for name in names]
    missing = [name for name, req in zip(names, requirements) if req is None]
    if missing:
        sys.exit(f"pinned.py: {', '.join(missing)}: neither pinned in {PYPROJECT} nor installed here; "
                 "pin it there, or `source env.sh` first")
    print(" ".join(requirements))
    return 0


if __name__ == "__main__":
    sys.exit(main())
