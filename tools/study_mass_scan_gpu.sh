#!/bin/bash
# The mass scan of tools/study_mass_scan.sh at a larger size, on a bare GPU machine, in one go
# (docs/results.md, "Larger run on a GPU machine"):
#
#   bash tools/study_mass_scan_gpu.sh
#
# Checks first that the networks train on the GPU (a few seconds; a broken setup stops here, not after
# the generation). Generates and trains with many processes at once (the GPU is shared; the CPU
# cores make the events and feed the trainings), stops starting trainings after STUDY_TRAIN_UNTIL
# seconds, stops the study after STUDY_STOP_AFTER seconds, then evaluates whatever trainings
# finished. Writes into $OUT (default /tmp/study_gpu): study.log, evaluate.log and
# mass_scan_gpu.tar.gz (results.json, results.md, img/, wall_times.txt and every training's log).
# The defaults fit one call of the device tool (at most 10 minutes). Measured on an H100 (docs/results.md):
# the first call (458 s) generated the events and trained folds 0-1; a second call on the same warm
# machine, STUDY_TRAIN_UNTIL=60 STUDY_STOP_AFTER=200 bash tools/study_mass_scan_gpu.sh (205 s), fold 2.
# What the machine needs besides python3 with a CUDA torch, numba, scipy, pandas, scikit-learn, onnx:
# the project's other dependencies as wheels in .whl/ (tools/gpu_env.sh installs them), for Python 3.12:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl weaver-core==0.5.3 uproot==5.7.7 awkward==2.14.0 \
#     awkward-cpp==57 vector==1.9.0 cramjam==2.14.0 lz4==4.4.5 pythia8mc==8.317.2 fastjet==3.5.2.0 \
#     pyhf==0.7.6 iminuit==2.33.0 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 \
#     referencing==0.37.0 rpds-py==2026.9.1 jsonpatch==1.48 jsonpointer==3.12 mplhep==1.3.3 \
#     mplhep-data==0.1.0 uhi==1.2.1 matplotlib==3.11.2
set -o pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/study_gpu}
mkdir -p "$OUT"
# shellcheck disable=SC1091
source tools/gpu_env.sh || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
echo "cores: $(nproc)"

# twice the default's events; the models of the comparisons cross vs concat and ML vs cuts (kin, jets
# and the parameterised model stay with the CPU run: one session has ~15 minutes of device time)
export STUDY_SCALE=${STUDY_SCALE:-2} STUDY_MODELS=${STUDY_MODELS:-"cross concat"} STUDY_PARAM=${STUDY_PARAM:-0}
export STUDY_PARALLEL=${STUDY_PARALLEL:-10} STUDY_WORKERS=${STUDY_WORKERS:-1}
export STUDY_CHUNKS_PER_FOLD=${STUDY_CHUNKS_PER_FOLD:-4} STUDY_TRAIN_UNTIL=${STUDY_TRAIN_UNTIL:-350}
export STUDY_DIR=${STUDY_DIR:-/tmp/mass_scan_events} STUDY_OUT=${STUDY_OUT:-/tmp/mass_scan_gpu}
STUDY_STOP_AFTER=${STUDY_STOP_AFTER:-420}

# one training step of each model on the GPU, before minutes of event generation
python3 - <<'PY' 2>&1 | tee "$OUT/cuda_check.log" || { echo "CUDA check failed: study not started"; exit 1; }
import torch
from benchmarks.configs import build, inputs_for
assert torch.cuda.is_available(), "no CUDA device"
for name, options in (("cross_paper", {}), ("concat", {"preset": "paper"})):
    model, info = build(name, **options)
    model = model.cuda().train()
    out = model(*inputs_for(info, 64, device="cuda"))
    out.float().logsumexp(1).mean().backward()
    assert torch.isfinite(out).all(), f"{name}: non-finite output on CUDA"
    print(f"{name}: a training step on {torch.cuda.get_device_name()}: ok")
PY
# GNU timeout signals its whole process group: the trainings and generator workers stop with it
timeout -k 15 "$STUDY_STOP_AFTER" tools/study_mass_scan.sh 2>&1 | tee "$OUT/study.log"
status=$?
echo "study exited with $status (124: stopped after $STUDY_STOP_AFTER s)" | tee -a "$OUT/study.log"
if ((status != 0)); then  # stopped before its own evaluation: evaluate the trainings that finished
    STUDY_TRAIN_UNTIL=0 tools/study_mass_scan.sh 2>&1 | tee "$OUT/evaluate.log"
    status=$?
fi
(cd "$STUDY_OUT" && tar czf "$OUT/mass_scan_gpu.tar.gz" --ignore-failed-read results.json results.md img wall_times.txt \
    configs ./*/*.stdout ./*/*/train.log ./*/*/predict_mH*.log)
exit $status
