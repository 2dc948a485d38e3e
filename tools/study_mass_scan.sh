#!/bin/bash
# The paper's headline result: sensitivity against the heavy-Higgs mass for jets, kin, concat and
# cross (paper preset + object b-tags), a parameterised cross model trained once on all masses, and
# a cut-based selection optimised at each mass; expected 95% CL limits with pyhf (docs/results.md).
#
#   tools/study_mass_scan.sh                 # default size: about 93 min from nothing on a 2-core CPU (docs/results.md)
#   STUDY_SCALE=2 STUDY_PARALLEL=10 ...      # a GPU machine: tools/study_mass_scan_gpu.sh
#
# Resumable: generation, truth tagging and every training whose predictions exist are skipped, so
# the study can be finished over several sittings. Environment knobs (defaults below):
#   STUDY_MASSES        m_H points in GeV
#   STUDY_SIGNAL        signal events per mass point (x STUDY_SCALE), cut into STUDY_FOLDS folds
#   STUDY_BACKGROUND    background events shared by all masses (90% QCD, 10% ttbar; x STUDY_SCALE)
#   STUDY_FOLDS         folds: training r tests on fold r and trains on the others
#   STUDY_REPEATS       trainings per model and mass (STUDY_REPEATS_REF at STUDY_REF_MASS)
#   STUDY_MODELS        per-mass models; STUDY_PARAM=0 skips the parameterised model
#   STUDY_EPOCHS, STUDY_BATCH, STUDY_FEATURES, STUDY_DIR (events), STUDY_OUT (trainings, results)
#   STUDY_PARALLEL      generations and trainings run at once (default 1; more only on a GPU machine:
#                       two torch processes on two cores are 5-10x slower than one after the other)
#   STUDY_CHUNKS_PER_FOLD  files per fold and sample (more: more generator processes at once)
#   STUDY_WORKERS       weaver data-loader workers per training (default 0)
#   STUDY_TRAIN_UNTIL   seconds after the start past which no training starts (default: none; 0:
#                       evaluate what is there); the evaluation then reports the trainings done,
#                       and a rerun adds the others
set -eo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source ./env.sh

STUDY_SCALE=${STUDY_SCALE:-1}
STUDY_MASSES=${STUDY_MASSES:-"600 800 1000 1500 2000"}
STUDY_SIGNAL=$(( ${STUDY_SIGNAL:-4000} * STUDY_SCALE ))
STUDY_BACKGROUND=$(( ${STUDY_BACKGROUND:-30000} * STUDY_SCALE ))
STUDY_FOLDS=${STUDY_FOLDS:-5}
STUDY_REPEATS=${STUDY_REPEATS:-3}
STUDY_REF_MASS=${STUDY_REF_MASS:-1000}
STUDY_REPEATS_REF=${STUDY_REPEATS_REF:-5}
STUDY_MODELS=${STUDY_MODELS:-"kin jets concat cross"}
STUDY_PARAM=${STUDY_PARAM:-1}
STUDY_EPOCHS=${STUDY_EPOCHS:-4}
STUDY_BATCH=${STUDY_BATCH:-128}
STUDY_FEATURES=${STUDY_FEATURES:-paperb}
STUDY_DIR=${STUDY_DIR:-$MS_ROOT/datasets/mass_scan}
STUDY_OUT=${STUDY_OUT:-$MS_ROOT/training/mass_scan}
STUDY_PARALLEL=${STUDY_PARALLEL:-1}
STUDY_CHUNKS_PER_FOLD=${STUDY_CHUNKS_PER_FOLD:-1}
STUDY_WORKERS=${STUDY_WORKERS:-0}
STUDY_TRAIN_UNTIL=${STUDY_TRAIN_UNTIL:-}
JOBS=${JOBS:-$(nproc)}
if ((STUDY_PARALLEL > 1)); then  # share the cores between the trainings that run at once
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / STUDY_PARALLEL > 0 ? $(nproc) / STUDY_PARALLEL : 1 ))}
fi
# the boosted preselection shared by every mass point (docs/results.md says why 250 GeV)
PRESELECTION=(--fj1-ptmin 250 --fj2-ptmin 250 --fj-etamax 2.0)
SIGNAL_XSEC_FB=${SIGNAL_XSEC_FB:-10}

gen="$STUDY_DIR/generated"
mkdir -p "$gen" "$STUDY_OUT"
start=$SECONDS
log() { printf '[%5ds] %s\n' $((SECONDS - start)) "$*"; }
timed() {  # NAME COMMAND...: run, and append "NAME seconds" to the study's timing record
    local t0=$SECONDS
    "${@:2}" || return
    echo "$1 $((SECONDS - t0))" >> "$STUDY_OUT/wall_times.txt"
}
# STUDY_PARALLEL > 1: commands go to the background, at most that many at once; a failed one is
# recorded in $failed and stops the study at the next join (the others finish first)
failed="$STUDY_OUT/.failed"
rm -f "$failed"
spawn() {  # COMMAND...
    if ((STUDY_PARALLEL <= 1)); then "$@"; return; fi
    while (($(jobs -rp | wc -l) >= STUDY_PARALLEL)); do wait -n || true; done
    { "$@" || echo "$*" >> "$failed"; } &
}
join() {
    wait
    [[ ! -e "$failed" ]] || { echo "failed: $(cat "$failed")" >&2; exit 1; }
}

# --- 1. events: chunk c of every sample belongs to fold c % STUDY_FOLDS, so a fold is a set of files
generate() {  # PROCESS EVENTS SEED [options]
    local chunks=$((STUDY_FOLDS * STUDY_CHUNKS_PER_FOLD))
    python tools/generate_events.py --process "$1" --events "$2" --events-per-file $((($2 + chunks - 1) / chunks)) \
        --seed "$3" --jobs "$JOBS" --outdir "$gen" "${PRESELECTION[@]}" "${@:4}"
}
log "generating events into $gen (resumes an interrupted run)"
for m in $STUDY_MASSES; do
    spawn timed "generate_hh4b_mH$m" generate hh4b "$STUDY_SIGNAL" $((1000 + m)) --mH "$m" --xsec-fb "$SIGNAL_XSEC_FB"
done
# backgrounds: pT-hat biased (weighted events) so that the boosted tail holds many MC events
spawn timed generate_qcd generate qcd $((STUDY_BACKGROUND * 9 / 10)) 11 --pthat-min 200 --pthat-bias 4
spawn timed generate_ttbar generate ttbar $((STUDY_BACKGROUND / 10)) 12 --pthat-min 200 --pthat-bias 4
join

# --- 2. truth tagging of the backgrounds: one copy per event to train on, one per tag class to test
# (training copies: the b-tag class drawn with its probability since the fix of truth_tagging.py; a
# new directory name, so that a study made before it does not reuse its uniformly drawn copies)
declare -A copies_dir=([train]="$STUDY_DIR/truth_train_physical" [test]="$STUDY_DIR/truth_test")
for mode in train test; do
    todo=()
    for f in "$gen"/qcd_*.root "$gen"/ttbar_*.root; do
        out="${copies_dir[$mode]}/$(basename "$f")"
        [[ -f "$out" && "$out" -nt "$f" ]] || todo+=("$f")
    done
    if ((${#todo[@]})); then
        log "truth tagging ${#todo[@]} background file(s) for $mode"
        for ((i = 0; i < STUDY_PARALLEL; i++)); do  # every STUDY_PARALLEL-th file to one process
            files=("${todo[@]:i:1}")
            for ((j = i + STUDY_PARALLEL; j < ${#todo[@]}; j += STUDY_PARALLEL)); do files+=("${todo[j]}"); done
            ((${#files[@]})) && spawn python tools/truth_tag.py --mode "$mode" --outdir "${copies_dir[$mode]}" "${files[@]}" > /dev/null
        done
    fi
done
join

# --- 3. per (mass, fold): DATADIR layout of train_multiscale.sh, as symbolic links ---------------
fold_of() { local stem=${1%.root}; echo $((${stem##*_} % STUDY_FOLDS)); }  # files end in _<chunk>.root
link_split() {  # DIR FOLD SIGNAL_FILES...: fold FOLD -> DIR/test, the other folds -> DIR/train
    local dir=$1 fold=$2 f split
    rm -rf "$dir"
    mkdir -p "$dir/train" "$dir/test"
    for f in "${@:3}" "${copies_dir[train]}"/*.root; do
        [[ "$(fold_of "$f")" == "$fold" ]] || ln -s "$f" "$dir/train/"
    done
    for f in "${@:3}" "${copies_dir[test]}"/*.root; do
        [[ "$(fold_of "$f")" == "$fold" ]] && ln -s "$f" "$dir/test/"
    done
    return 0
}
n_events() { python -c 'import sys, uproot; print(sum(uproot.open(f)["Events"].num_entries for f in sys.argv[1:]))' "$@"; }

train() {  # MODEL DATADIR OUTDIR FOLD [weaver args]: one training, skipped when its predictions exist
    local model=$1 data=$2 outdir=$3 fold=$4
    local rundir="$outdir/${model}_${STUDY_FEATURES}_fold$fold"
    [[ -f "$rundir/pred.root" ]] && return 0
    if [[ -n "$STUDY_TRAIN_UNTIL" ]] && ((SECONDS - start >= STUDY_TRAIN_UNTIL)); then
        log "not starting $model on $(basename "$data"): past STUDY_TRAIN_UNTIL=$STUDY_TRAIN_UNTIL s"
        return 0
    fi
    local n steps
    n=$(n_events "$data"/train/*.root)
    steps=$(( n * 8 / 10 / STUDY_BATCH ))  # weaver keeps 80% for training: one pass per epoch
    ((steps > 0)) || steps=1
    log "training $model on $(basename "$data") ($n events, $STUDY_EPOCHS x $steps steps)"
    mkdir -p "$rundir"
    local t0=$SECONDS
    DATADIR_hh4b=$data MS_OUTDIR=$outdir COMMENT=fold$fold ./train_multiscale.sh "$model" "$STUDY_FEATURES" \
        -o seed $((fold + 1)) --num-epochs "$STUDY_EPOCHS" --batch-size "$STUDY_BATCH" --in-memory \
        --steps-per-epoch "$steps" --num-workers "$STUDY_WORKERS" --optimizer adamw --start-lr 2e-3 "${@:5}" > "$rundir.stdout" 2>&1 \
        || { echo "training $model ($data) failed: see $rundir.stdout" >&2; return 1; }
    echo "$model $(basename "$data") $((SECONDS - t0))" >> "$STUDY_OUT/wall_times.txt"
}

repeats_at() { if [[ "$1" == "$STUDY_REF_MASS" ]]; then echo "$STUDY_REPEATS_REF"; else echo "$STUDY_REPEATS"; fi; }

# --- 4. the parameterised model: trained once on every mass, evaluated at each ------------------
masses_list=$(echo "$STUDY_MASSES" | tr ' ' ',')
mkdir -p "$STUDY_OUT/configs"
# training config: background events draw their mass hypothesis from the study's masses
sed "s/\[600, 800, 1000, 1500, 2000\]/[$masses_list]/" data/jets_kin_param.yaml > "$STUDY_OUT/configs/jets_kin_param_train.yaml"
for m in $STUDY_MASSES; do
    sed "s/\[600, 800, 1000, 1500, 2000\]/[$m]/" data/jets_kin_param.yaml > "$STUDY_OUT/configs/jets_kin_param_mH$m.yaml"
done
parameterised() {  # FOLD: train on all masses, then predict each mass point's test fold
    local fold=$1 m
    local rundir="$STUDY_OUT/param/cross_param_${STUDY_FEATURES}_fold$fold"
    # (the test predictions made at the end of the training mix the hypotheses: not used)
    train cross_param "$STUDY_DIR/splits/all_fold$fold" "$STUDY_OUT/param" "$fold" \
        --data-config "$STUDY_OUT/configs/jets_kin_param_train.yaml" || return 1
    [[ -f "$rundir/pred.root" ]] || return 0  # not started (STUDY_TRAIN_UNTIL)
    for m in $STUDY_MASSES; do
        [[ -f "$rundir/pred_mH$m.root" ]] && continue
        log "evaluating cross_param at m_H = $m (fold $fold)"
        DATADIR_hh4b="$STUDY_DIR/splits/mH${m}_fold$fold" MS_OUTDIR="$STUDY_OUT/param" COMMENT=fold$fold \
            ./train_multiscale.sh predict cross_param "$STUDY_FEATURES" --data-config "$STUDY_OUT/configs/jets_kin_param_mH$m.yaml" \
            --predict-output "$rundir/pred_mH$m.root" --log "$rundir/predict_mH$m.log" > /dev/null 2>&1 \
            || { echo "prediction of cross_param at $m failed: see $rundir/predict_mH$m.log" >&2; return 1; }
    done
}

# --- 5. trainings, fold by fold: an interrupted (or STUDY_TRAIN_UNTIL-limited) study has as many
# repeats at every mass point
max_repeats=$STUDY_REPEATS
((STUDY_REPEATS_REF > max_repeats)) && max_repeats=$STUDY_REPEATS_REF
for ((fold = 0; fold < max_repeats; fold++)); do
    for m in $STUDY_MASSES; do
        ((fold < $(repeats_at "$m"))) || continue
        split="$STUDY_DIR/splits/mH${m}_fold$fold"
        link_split "$split" "$fold" "$gen"/hh4b_mH"${m}"_*.root
        for model in $STUDY_MODELS; do
            spawn train "$model" "$split" "$STUDY_OUT/mH$m" "$fold"
        done
    done
    if [[ "$STUDY_PARAM" == 1 ]] && ((fold < STUDY_REPEATS)); then
        link_split "$STUDY_DIR/splits/all_fold$fold" "$fold" "$gen"/hh4b_mH*_*.root
        spawn parameterised "$fold"
    fi
done
join

# --- 6. evaluation: metrics, limits, comparisons, plots ------------------------------------------
log "evaluating"
python -m multiscale.study.mass_scan --out "$STUDY_OUT" --data "$STUDY_DIR" --folds "$STUDY_FOLDS" \
    --masses $STUDY_MASSES --features "$STUDY_FEATURES" \
    --models $STUDY_MODELS $([[ "$STUDY_PARAM" == 1 ]] && echo cross_param) --ref-mass "$STUDY_REF_MASS"
log "done: $STUDY_OUT/results.md"
