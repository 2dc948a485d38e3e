#!/bin/bash
# The paper's comparison: jets-only, kin-only, concat and cross (and cross3 if listed) with several
# trainings each, then one evaluation of all of them. The defaults are sized for a 2-core CPU (about
# 30 min); on a GPU raise STUDY_SIGNAL, STUDY_EPOCHS and use STUDY_FEATURES=full.
# Resumable: a training whose pred.root exists is not redone; the sample is generated once.
#
#   tools/study_fusion.sh                   # defaults below; override with env variables
#   STUDY_MODELS="jets kin concat cross cross3" STUDY_SEEDS="1 2 3" tools/study_fusion.sh
set -eo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source ./env.sh

STUDY_SIGNAL=${STUDY_SIGNAL:-2000}
STUDY_TEST_SIGNAL=${STUDY_TEST_SIGNAL:-2000}
STUDY_EPOCHS=${STUDY_EPOCHS:-5}
STUDY_FEATURES=${STUDY_FEATURES:-paper}   # paper: ~3x faster on CPU than full
STUDY_BATCH=${STUDY_BATCH:-128}
STUDY_MODELS=${STUDY_MODELS:-"jets kin concat cross"}
STUDY_SEEDS=${STUDY_SEEDS:-"1 2 3 4 5"}
export DATADIR_hh4b=${STUDY_DATADIR:-$MS_ROOT/datasets/hh4b_study}
export MS_OUTDIR=${STUDY_OUTDIR:-$MS_ROOT/training/study}

tools/make_dataset.sh "$DATADIR_hh4b/train" "$STUDY_SIGNAL" 1000
tools/make_dataset.sh "$DATADIR_hh4b/test" "$STUDY_TEST_SIGNAL" 2000

mkdir -p "$MS_OUTDIR"
steps=$((2 * STUDY_SIGNAL * 8 / 10 / STUDY_BATCH))
preds=() names=()
for model in $STUDY_MODELS; do
    for seed in $STUDY_SEEDS; do
        rundir="$MS_OUTDIR/${model}_${STUDY_FEATURES}_seed$seed"
        if [[ ! -f "$rundir/pred.root" ]]; then
            echo "=== training $model, seed $seed"
            start=$SECONDS
            COMMENT="seed$seed" ./train_multiscale.sh "$model" "$STUDY_FEATURES" -o seed "$seed" \
                --num-epochs "$STUDY_EPOCHS" --batch-size "$STUDY_BATCH" --in-memory --steps-per-epoch "$steps" \
                --num-workers 0 --optimizer adamw --start-lr 2e-3 > "$rundir.stdout" 2>&1 \
                || { echo "training $model seed $seed failed: see $rundir.stdout" >&2; exit 1; }
            echo "$((SECONDS - start))" > "$rundir/train_seconds"
        fi
        preds+=("$rundir/pred.root") names+=("$model")
    done
done

python tools/evaluate.py "${preds[@]}" --names "${names[@]}" --outdir "$MS_OUTDIR/eval"
