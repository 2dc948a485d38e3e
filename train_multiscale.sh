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
# options:  weaver's, after the driver's defaults (multiscale/driver_options.py); --in-memory loads every
#           event once, and without --steps-per-epoch trains one pass over them per epoch
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

require_model() {
    [[ -f "$rundir/net_best_epoch_state.pt" ]] || die "no trained model $rundir/net_best_epoch_state.pt: train it first with './train_multiscale.sh $MODEL $FEATURES'"
}

device_opts() {
    local ngpu
    ngpu=0
    # no NVIDIA driver (no /dev/nvidiactl, no nvidia-smi): CPU, without importing torch just to ask (~2 s a run)
    if [[ -e /dev/nvidiactl ]] || command -v nvidia-smi >/dev/null; then
        ngpu=$(python -c 'import torch; print(torch.cuda.device_count())')
    fi
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

common_opts() {
    echo --data-config "$datacfg" --network-config networks/multiscale_cross.py --custom-functions data/jet_functions.py
}

plan() {  # train|predict [extra weaver args] -> the files and options (multiscale/driver_options.py)
    local words
    words=$(python -m multiscale.driver_options "$1" --datadir "$DATADIR_hh4b" -- "${@:2}") || exit 1
    eval "$words"
}

train() {
    setup "$@"
    shift "$nargs"
    plan train "$@"
    [[ -z "$resume" ]] || python -m multiscale.best_epoch check "$rundir/net" "$rundir/train.log" "$resume" || exit 1
    device_opts
    weaver_cmd
    python -m multiscale.training_inputs "$datacfg" --train "${train[@]}" --test "${test[@]}" || exit 1
    mkdir -p "$rundir"
    # shellcheck disable=SC2046
    "${cmd[@]}" $(common_opts) "${netopts[@]}" \
        --data-train "${train[@]}" --data-test "${test[@]}" \
        --model-prefix "$rundir/net" "$logopt" "$rundir/train.log" --predict-output "$rundir/pred.root" \
        --tensorboard "$run" --gpus "$gpus" "${options[@]}" "${args[@]}"
    local rc=$?
    [[ -z "$resume" ]] || keep_best --data-test "${test[@]}" "${args[@]}" || rc=$?
    return "$rc"
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
    require_model
    plan predict "$@"
    device_opts
    python -m multiscale.check_inputs "$datacfg" "${test[@]}" || exit 1
    # shellcheck disable=SC2046
    weaver --predict $(common_opts) "${netopts[@]}" \
        --data-test "${test[@]}" --model-prefix "$rundir/net_best_epoch_state.pt" \
        --predict-output "$rundir/pred.root" --log "$rundir/predict.log" \
        --gpus "$gpus" "${options[@]}" "${args[@]}"
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
