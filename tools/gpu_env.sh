#!/bin/bash
# Source me on a bare GPU machine (benchmarks/benchmark_gpu.sh, the mass-scan workflow: docs/workflow.md): installs
# the wheels in .whl/ into /tmp/site and points this project at the machine's own python3 (CUDA torch)
# with them, instead of env.sh's venv. Wheels for Python 3.12, e.g.
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl weaver-core==0.5.3 uproot==5.7.7 awkward==2.14.0 \
#     awkward-cpp==57 vector==1.9.0 cramjam==2.14.0 lz4==4.4.5 pythia8mc==8.317.2 fastjet==3.5.2.0 \
#     pyhf==0.7.6 iminuit==2.33.0 mplhep==1.3.3 mplhep-data==0.1.0 uhi==1.2.1 matplotlib==3.11.2
# and for the workflow, Snakemake with its dependencies (the same options without --no-deps):
#   pip download --only-binary=:all: [the options above] -d .whl snakemake==9.27.1 Markdown==3.11.3
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
