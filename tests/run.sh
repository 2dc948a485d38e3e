#!/bin/bash
# The test command (README, CI): sets up the environment with env.sh, then runs the whole pytest suite on two
# pytest-xdist workers, a test file per worker at a time (its module fixtures built once; conftest.py gives each
# worker one torch/OpenMP thread and puts the longest files first).
# Extra arguments go to pytest, e.g. `./tests/run.sh -k network -x`; `-n 0`, `-p no:xdist` or `-s` runs in one process.
set -o pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck disable=SC1091
source ./env.sh || exit 1
parallel=(-n 2 --dist loadfile --no-loadscope-reorder)  # files in conftest.py's order: the longest first
for arg in "$@"; do
    case "$arg" in
        -n*|--numprocesses|--numprocesses=*|no:xdist|-pno:xdist) parallel=() ;;
        -s|--capture=no) parallel=() ;;  # the workers' output would not reach the terminal
    esac
done
python -m pytest -ra --durations=15 "${parallel[@]}" "$@"
