#!/bin/bash
# The test command (README, CI): sets up the environment with env.sh, then runs the whole pytest suite.
# Extra arguments go to pytest, e.g. `./tests/run.sh -k network -x`.
set -o pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck disable=SC1091
source ./env.sh || exit 1
python -m pytest -ra --durations=15 "$@"
