#!/bin/bash
# Train, predict and export the multi-scale cross-attention transformer (arXiv:2401.00452) with
# weaver, in the manner of particle_transformer's train_JetClass.sh.
#
#   ./train_multiscale.sh MODEL [FEATURES] [extra weaver args]     train (+ predict on the test set)
#   ./train_multiscale.sh predict MODEL [FEATURES] [extra args]     predict with the best epoch
#   ./train_multiscale.sh export MODEL [FEATURES] [extra args]      export the best epoch to ONNX
#   ./train_multiscale.sh demo                                      the whole chain on a fresh machine
#
# MODEL:    cross (jets + objects, cross-attention)  concat (jets + objects, concatenation)
#           jets (constituents only)  kin (objects only)  cross3 (fj1, fj2, objects: cross-attention)
#           cross_param (cross with the m_H hypothesis as an object feature: one model for all masses)
# FEATURES: full (default preset) | paper (the talk's configuration) | paperb (paper + object b-tags)
#           (the table of both: multiscale/definitions.py)
# data:     --data-train FILE... / --data-test FILE... (weaver's options): exactly those files; without them
#           every .root file of DATADIR_hh4b/train and DATADIR_hh4b/test (named on the terminal)
# env:      DATADIR_hh4b (datasets; default ./datasets/hh4b), MS_OUTDIR (trainings; default ./training),
#           DDP_NGPUS=n (torchrun with n processes: nccl on GPUs, gloo on CPUs), COMMENT (run-name suffix),
#           PYTHONHASHSEED (default 0: with -o seed N a training is reproduced bit for bit on CPU)

set -o pipefail
cd "$(dirname "$0")" || exit 1

usage() {
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
die() { echo "train_multiscale.sh: $*" >&2; exit 1; }

model_config() {  # MODEL FEATURES -> datacfg and netopts, from the model table in multiscale/definitions.py
    local words
    words=$(python3 -m multiscale.definitions weaver-options "$1" "$2") || usage
    mapfile -t netopts <<< "$words"
    datacfg=${netopts[0]}
    netopts=("${netopts[@]:1}")
}

setup() {  # MODEL [FEATURES] ...: sets datacfg, netopts, run, rundir, and nargs (words consumed)
    [[ -n "$1" ]] || usage
    MODEL=$1
    FEATURES=full
    nargs=1
    if [[ -n "$2" && "$2" != -* ]]; then FEATURES=$2; nargs=2; fi
    model_config "$MODEL" "$FEATURES"
    run="${MODEL}_${FEATURES}${COMMENT:+_$COMMENT}"
    rundir="${MS_OUTDIR:-training}/$run"
}

require_data() {  # SPLIT
    local dir="$DATADIR_hh4b/$1"
    compgen -G "$dir/*.root" >/dev/null || die "no $1 data in $dir: run './train_multiscale.sh demo', generate files with tools/generate_events.py (see README), set DATADIR_hh4b, or give --data-$1 FILE..."
}

require_model() {
    [[ -f "$rundir/net_best_epoch_state.pt" ]] || die "no trained model $rundir/net_best_epoch_state.pt: train it first with './train_multiscale.sh $MODEL $FEATURES'"
}

data_options() {  # [extra weaver args] -> data_train, data_test (the --data-train/--data-test files), args (the rest)
    local arg into=""
    data_train=() data_test=() args=()
    for arg in "$@"; do
        case "$arg" in
            --data-train|--data-test) into=${arg#--data-}; continue ;;
            --data-train=*) data_train+=("${arg#*=}"); into=""; continue ;;
            --data-test=*) data_test+=("${arg#*=}"); into=""; continue ;;
            -*) into="" ;;
        esac
        case "$into" in
            train) data_train+=("$arg") ;;
            test) data_test+=("$arg") ;;
            *) args+=("$arg") ;;
        esac
    done
}

split_files() {  # SPLIT: files (every .root file of DATADIR_hh4b/SPLIT, named: nothing left out unseen)
    require_data "$1"
    files=("$DATADIR_hh4b/$1"/*.root)
    echo "train_multiscale.sh: $1 files: every file of $DATADIR_hh4b/$1 (${#files[@]}: $(basename -a "${files[@]}" | paste -sd' '))" >&2
}

train_files() {  # the --data-train files, else every file of DATADIR_hh4b/train (one list: each fetch reads every file)
    if ((${#data_train[@]})); then files=("${data_train[@]}"); else split_files train; fi
}

test_files() {  # one plain list: weaver writes one prediction file (groups would give one per group)
    if ((${#data_test[@]})); then files=("${data_test[@]}"); else split_files test; fi
}

device_opts() {
    local ngpu
    ngpu=$(python -c 'import torch; print(torch.cuda.device_count())')
    if ((ngpu > 0)); then gpus=$(seq -s, 0 $((ngpu - 1))); gpus=${gpus%,}; else gpus=""; fi
    if [[ -z "$gpus" ]]; then
        # CPU training: let glibc reuse freed activation buffers instead of unmapping and page-faulting
        # them in again every step (+10% for cross, measured side by side: docs/performance.md)
        export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-67108864} MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-268435456}
    fi
}

weaver_cmd() {  # the trainer, under torchrun when DDP_NGPUS > 1 (see multiscale/weaver_ddp.py)
    local nproc=${DDP_NGPUS:-1}
    logopt=--log
    if ((nproc > 1)); then
        local backend=gloo
        [[ -n "$gpus" ]] && backend=nccl
        cmd=(torchrun --standalone --nnodes=1 --nproc_per_node="$nproc" -m multiscale.weaver_ddp --backend "$backend")
        logopt=--log-file  # torchrun's parser would stop at --log
    else
        cmd=(weaver)
    fi
}

fetch_opts() {  # [extra weaver args] -> fetch: how much of the data weaver loads at a time
    # --in-memory loads the data once and trains on it for good: only --fetch-step 1 loads every
    # event (weaver's default, 0.01, would train on 1% of them)
    local arg prev="" in_memory=0 step=""
    for arg in "$@"; do
        [[ "$arg" == --in-memory ]] && in_memory=1
        [[ "$prev" == --fetch-step ]] && step=$arg
        [[ "$arg" == --fetch-step=* ]] && step=${arg#--fetch-step=}
        prev=$arg
    done
    if ((in_memory)); then
        [[ -z "$step" || "$step" == 1 || "$step" == 1.0 ]] \
            || die "--in-memory with --fetch-step $step would train on only that fraction of the events, loaded once: drop --fetch-step (the driver passes 1)"
        fetch=(--fetch-step 1)
    else
        fetch=(--fetch-step 0.2)  # streaming: a fifth of every file per fetch, all files every epoch
    fi
}

common_opts() {
    echo --data-config "$datacfg" --network-config networks/multiscale_cross.py --custom-functions data/jet_functions.py
}

train() {
    setup "$@"
    shift "$nargs"
    data_options "$@"
    set -- "${args[@]}"
    resumed_epoch "$@"
    [[ -z "$resume" ]] || python -m multiscale.best_epoch check "$rundir/net" "$rundir/train.log" "$resume" || exit 1
    device_opts
    weaver_cmd
    train_files; local train=("${files[@]}")
    test_files; local test=("${files[@]}")
    python -m multiscale.training_inputs "$datacfg" --train "${train[@]}" --test "${test[@]}" || exit 1
    fetch_opts "$@"
    mkdir -p "$rundir"
    # shellcheck disable=SC2046
    "${cmd[@]}" $(common_opts) "${netopts[@]}" \
        --data-train "${train[@]}" --data-test "${test[@]}" \
        --model-prefix "$rundir/net" "$logopt" "$rundir/train.log" --predict-output "$rundir/pred.root" \
        --tensorboard "$run" --gpus "$gpus" \
        --num-epochs 20 --batch-size 256 --start-lr 1e-3 --optimizer ranger \
        --num-workers 1 "${fetch[@]}" \
        "$@"
    local rc=$?
    [[ -z "$resume" ]] || keep_best --data-test "${test[@]}" "$@" || rc=$?
    return "$rc"
}

resumed_epoch() {  # [extra weaver args] -> resume: the --load-epoch value, if any
    local arg prev=""
    resume=""
    for arg in "$@"; do
        [[ "$prev" == --load-epoch ]] && resume=$arg
        [[ "$arg" == --load-epoch=* ]] && resume=${arg#--load-epoch=}
        prev=$arg
    done
}

keep_best() {  # [extra weaver args]: after --load-epoch, the best epoch of all runs, not of the resumed one
    # weaver 0.5.3 resets its best metric on resume: a worse resumed epoch would replace the best
    # model, and weaver has just predicted the test set with it (see multiscale/best_epoch.py)
    python -m multiscale.best_epoch restore "$rundir/net" "$rundir/train.log"
    local rc=$?
    ((rc == 3)) || return "$rc"
    echo "train_multiscale.sh: predicting the test set again with the restored best epoch" >&2
    predict "$MODEL" "$FEATURES" "$@"
}

predict() {
    setup "$@"
    shift "$nargs"
    data_options "$@"
    set -- "${args[@]}"
    require_model
    device_opts
    test_files
    python -m multiscale.check_inputs "$datacfg" "${files[@]}" || exit 1
    # shellcheck disable=SC2046
    weaver --predict $(common_opts) "${netopts[@]}" \
        --data-test "${files[@]}" --model-prefix "$rundir/net_best_epoch_state.pt" \
        --predict-output "$rundir/pred.root" --log "$rundir/predict.log" \
        --gpus "$gpus" --batch-size 256 --num-workers 1 \
        "$@"
}

export_onnx() {
    setup "$@"
    shift "$nargs"
    require_model
    # shellcheck disable=SC2046
    weaver $(common_opts) "${netopts[@]}" \
        --model-prefix "$rundir/net_best_epoch_state.pt" --export-onnx "$rundir/model.onnx" \
        --log "$rundir/export.log" "$@"
}

# check the usage before the (first-time: minutes long) environment setup
case "$1" in
    ""|-h|--help|help) usage ;;
    demo) ;;
    predict|export) setup "${@:2}" ;;
    *) setup "$@" ;;
esac

# shellcheck disable=SC1091
source ./env.sh || die "environment setup failed (see above)"
# fixed hashes: with them free, two weaver runs of one command trained on one of two event orders at random
# (docs/performance.md); with -o seed (torch and numpy's shuffles: multiscale/network.py) a training repeats
export PYTHONHASHSEED=${PYTHONHASHSEED:-0}

case "$1" in
    demo) shift; exec bash tools/demo.sh "$@" ;;
    predict) shift; predict "$@" ;;
    export) shift; export_onnx "$@" ;;
    *) train "$@" ;;
esac
