#!/bin/bash
# Generate one split of the hh4b sample if it is not there yet:
#   tools/make_dataset.sh DIR SIGNAL_EVENTS SEED
# writes SIGNAL_EVENTS hh4b (m_H = 1 TeV) events and as many background events (90% QCD, 10% ttbar)
# into DIR, with seeds SEED+1, SEED+2, SEED+3. A directory that already holds .root files is kept.
# The signal is normalised to SIGNAL_XSEC_FB (default 10 fb for gg -> H -> hh -> bbbb): Pythia's
# default BSM couplings give ~3e-6 fb, and a heavy scalar's rate is a model choice. Background
# cross sections are Pythia's.
set -eo pipefail
dir=$1 n=$2 seed=$3
[[ -n "$dir" && -n "$n" && -n "$seed" ]] || { echo "usage: tools/make_dataset.sh DIR SIGNAL_EVENTS SEED" >&2; exit 2; }
if compgen -G "$dir/*.root" >/dev/null; then
    echo "$dir already holds events: kept (delete it to regenerate)"
    exit 0
fi
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
gen() {  # PROCESS EVENTS SEED [options]: one file per job, so that the jobs run in parallel
    local per_file=$(( ($2 + jobs - 1) / jobs ))
    python tools/generate_events.py --process "$1" --events "$2" --seed "$3" --outdir "$dir" \
        --jobs "$jobs" --events-per-file "$(( per_file > 0 ? per_file : 1 ))" "${@:4}"
}
gen hh4b "$n" $((seed + 1)) --xsec-fb "${SIGNAL_XSEC_FB:-10}"
gen qcd $((n * 9 / 10)) $((seed + 2))
gen ttbar $((n / 10)) $((seed + 3))
