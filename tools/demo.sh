#!/bin/bash
# The main job on a fresh machine, run by `./train_multiscale.sh demo` (after env.sh):
# generate a small hh4b + QCD + ttbar sample if it is not there, train the cross-attention model,
# predict on the held-out test sample, export ONNX, check ONNX against PyTorch through weaver's own
# prediction loop, evaluate (ROC plot + metrics), and open the model: attention maps and Grad-CAM.
#
# The training is the mass scan's recipe (config/mass_scan.yaml: epochs, batch, optimizer, learning rate; every
# event in memory, one pass per epoch). Sizes (env): DEMO_SIGNAL signal training events (background: as many, 90%
# QCD + 10% ttbar), DEMO_TEST_SIGNAL likewise for the test sample, DEMO_EPOCHS and DEMO_BATCH (default: the
# recipe's), JOBS (generator processes).

set -eo pipefail
cd "$(dirname "$0")/.."

DEMO_SIGNAL=${DEMO_SIGNAL:-3000}
DEMO_TEST_SIGNAL=${DEMO_TEST_SIGNAL:-1000}
recipe_words=$(python -m multiscale.driver_options study-recipe config/mass_scan.yaml)
read -ra recipe <<< "$recipe_words"
recipe+=(${DEMO_EPOCHS:+--num-epochs "$DEMO_EPOCHS"} ${DEMO_BATCH:+--batch-size "$DEMO_BATCH"})  # weaver keeps the last
export COMMENT=${COMMENT:-demo}
rundir="$MS_OUTDIR/cross_full_$COMMENT"
start=$SECONDS
step() { printf '\n=== [%4ds] %s\n' $((SECONDS - start)) "$*"; }

step "generating events with Pythia 8 + FastJet into $DATADIR_hh4b"
tools/make_dataset.sh "$DATADIR_hh4b/train" "$DEMO_SIGNAL" 100
tools/make_dataset.sh "$DATADIR_hh4b/test" "$DEMO_TEST_SIGNAL" 200

step "training the cross-attention model (${recipe[*]}; CPU unless a GPU is present)"
./train_multiscale.sh cross full "${recipe[@]}"

step "exporting to ONNX"
./train_multiscale.sh export cross full

step "checking ONNX against PyTorch: weaver predicts the test sample with the ONNX model"
./train_multiscale.sh predict cross full --model-prefix "$rundir/model.onnx" \
    --predict-output "$rundir/pred_onnx.root" --log "$rundir/predict_onnx.log" --num-workers 0
python tools/compare_predictions.py "$rundir/pred.root" "$rundir/pred_onnx.root" --tolerance 1e-4

step "evaluating"
python tools/evaluate.py "$rundir/pred.root" --names cross --outdir "$rundir/eval"

step "interpretability: attention maps and Grad-CAM on the test sample"
interpret=(-c data/jets_kin.yaml -n networks/multiscale_cross.py -m "$rundir/net_best_epoch_state.pt"
           --files "$DATADIR_hh4b/test/*.root" --events "$DEMO_TEST_SIGNAL" -o fusion "'cross'" -o preset "'default'"
           --label "demo model")
python tools/attention_maps.py "${interpret[@]}" --relative --outdir "$rundir/interpret/attention" >/dev/null
python tools/gradcam.py "${interpret[@]}" --log --outdir "$rundir/interpret/gradcam" >/dev/null

step "done in $((SECONDS - start)) s"
cat <<MSG
  model          $rundir/net_best_epoch_state.pt
  predictions    $rundir/pred.root   (TTree Events: scores, labels, observers)
  ONNX model     $rundir/model.onnx  (+ preprocess.json)
  ROC plot       $rundir/eval/roc.png
  attention maps $rundir/interpret/attention/*.png   (docs/interpretability.md explains them)
  Grad-CAM       $rundir/interpret/gradcam/gradcam.png, gradcam_jets.png
  metrics        $rundir/eval/metrics.json, $rundir/eval/metrics.md
  training log   $rundir/train.log   (tensorboard: runs/)
MSG
