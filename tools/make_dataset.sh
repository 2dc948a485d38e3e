#!/bin/bash
# Generate one split of the hh4b sample, or complete it:
#   tools/make_dataset.sh DIR SIGNAL_EVENTS SEED
# writes SIGNAL_EVENTS hh4b (m_H = 1 TeV) events and as many background events (90% QCD, 10% ttbar)
# into DIR, with seeds SEED+1, SEED+2, SEED+3. The generator is called for every process each time:
# a complete run (its manifest) is kept, an interrupted one resumes with the files it is missing, and
# files of other settings are an error (docs/generation.md, "Resuming").
# The signal is normalised to SIGNAL_XSEC_FB (default 10 fb for gg -> H -> hh -> bbbb): Pythia's
# default BSM couplings give ~3e-6 fb, and a heavy scalar's rate is a model choice. Background
# cross sections are Pythia's.
set -eo pipefail
dir=$1 n=$2 seed=$3
[[ -n "$dir" && -n "$n" && -n "$seed" ]] || { echo "usage: tools/make_dataset.sh DIR SIGNAL_EVENTS SEED" >&2; exit 2; }
[[ "$dir" == /* ]] || dir="$PWD/$dir"  # before the cd below
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
gen() {  # PROCESS EVENTS SEED [options]: one file per job, so that the jobs run in parallel
    # the chunking depends on JOBS: resume with the same JOBS (another one is refused, naming the file)
    local per_file=$(( ($2 + jobs - 1) / jobs ))
    python tools/generate_events.py --process "$1" --events "$2" --seed "$3" --outdir "$dir" \
        --jobs "$jobs" --events-per-file "$(( per_file > 0 ? per_file : 1 ))" "${@:4}"
}
gen hh4b "$n" $((seed + 1)) --xsec-fb "${SIGNAL_XSEC_FB:-10}"
gen qcd $((n * 9 / 10)) $((seed + 2))
gen ttbar $((n / 10)) $((seed + 3))
