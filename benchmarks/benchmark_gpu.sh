#!/bin/bash
# The GPU benchmark of docs/performance.md ("GPU"), made to run on a bare GPU machine in one go:
#
#   bash benchmarks/benchmark_gpu.sh [more options of python -m benchmarks]
#
# writes $OUT/benchmark_gpu.json (the figures, docs/benchmark_gpu.json), $OUT/benchmark_gpu.log
# and the profiler tables $OUT/profile_{eager,compiled}.txt ($OUT defaults to /tmp/benchmark_gpu).
# What the machine needs besides python3 with a CUDA torch, onnxruntime, numba, pandas, scikit-learn:
#   - the Python packages that the GPU image lacks, as wheels in .whl/ at the versions pyproject.toml pins
#     (tools/gpu_env.sh installs them; its header has the command that downloads them)
#   - ROOT files for weaver's loop in $GPU_BENCH_DATA (default datasets/gpu_bench: 2000 hh4b + 2000 QCD
#     events in 8 files, tools/generate_events.py --events-per-file 500, see docs/performance.md).
# Sizes are chosen to finish in about 6 minutes on an H100/H200 (torch.compile and weaver have budgets).
set -o pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/benchmark_gpu}
mkdir -p "$OUT"
# shellcheck disable=SC1091
source tools/gpu_env.sh || exit 1
data=${GPU_BENCH_DATA:-datasets/gpu_bench}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit --format=csv || true
python3 -m benchmarks --gpu --weaver-data "sig:$data/hh4b_*.root" "bkg:$data/qcd_*.root" --weaver-steps 20 \
    --compile-budget 100 --weaver-budget 70 --out "$OUT/benchmark_gpu.json" "$@" 2>&1 | tee "$OUT/benchmark_gpu.log"
status=$?
python3 - "$OUT" <<'EOF' || true
import json, sys
out = sys.argv[1]
for p in json.load(open(f"{out}/benchmark_gpu.json")).get("gpu_profile", []):
    if "table" in p:
        with open(f"{out}/profile_{'compiled' if p['compiled'] else 'eager'}.txt", "w") as f:
            f.write(f"{p['config']} batch {p['batch']} {p['precision']} compiled={p['compiled']}, {p['steps']} steps\n")
            f.write(p["table"] + "\n")
EOF
exit $status
