#!/bin/bash
# Source me on a bare GPU machine (benchmarks/benchmark_gpu.sh, the mass-scan workflow: docs/workflow.md): installs
# the wheels in .whl/ into /tmp/site and points this project at the machine's own python3 (CUDA torch)
# with them, instead of env.sh's venv. Wheels for Python 3.12 at the versions pyproject.toml pins (tools/pinned.py
# prints them; run it after `source env.sh` for the dependencies it does not pin, e.g. awkward-cpp), e.g.
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl $(python tools/pinned.py weaver-core uproot awkward awkward-cpp \
#     vector cramjam lz4 pythia8mc fastjet pyhf mplhep mplhep-data uhi matplotlib)
# (the benchmark, benchmarks/benchmark_gpu.sh, needs the packages up to lz4) and for the workflow, Snakemake
# with its dependencies (the same options without --no-deps):
#   pip download --only-binary=:all: [the options above] -d .whl $(python tools/pinned.py snakemake Markdown)
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || return 1
fi
# pip --target leaves out Pythia's settings (the wheel's data files): point Pythia at them in the wheel
export PYTHIA8DATA=/tmp/pythia8data/share/Pythia8/xmldoc
python3 - <<'PY' || return 1
import glob, os, zipfile
for wheel in glob.glob(".whl/pythia8mc-*.whl"):
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if "/data/share/Pythia8/" in name and not name.endswith("/"):
                target = "/tmp/pythia8data/share/" + name.split("/data/share/", 1)[1]
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as out:
                    out.write(archive.read(name))
PY
mkdir -p /tmp/bin
command -v python >/dev/null || ln -sf "$(command -v python3)" /tmp/bin/python
export MS_NO_VENV=1 PATH="/tmp/bin:/tmp/site/bin:$PATH" PYTHONPATH="$PWD:/tmp/site" PYTHONUNBUFFERED=1
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-/tmp/numba_cache} MPLCONFIGDIR=${MPLCONFIGDIR:-/tmp/mpl}
