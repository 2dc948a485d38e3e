#!/bin/bash
# Training events/s of the original TensorFlow package's model_1 demo and of this project's matched
# configuration, measured alternately (PAIRS times, which one goes first alternating too) so that
# both see the same machine load.
#
#   python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu==2.21.0
#   source env.sh && TF_PYTHON=/tmp/tfenv/bin/python benchmarks/reference/compare_original.sh docs/benchmark_vs_original.json
#
# env: TF_PYTHON (a python with TensorFlow; default /tmp/tfenv/bin/python), PAIRS (default 3),
#      LOOP_STEPS (steps of the original loop as written, timed in the first pair; default 1600).
set -eo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: compare_original.sh OUT.json}
TF_PYTHON=${TF_PYTHON:-/tmp/tfenv/bin/python}
PAIRS=${PAIRS:-3}
"$TF_PYTHON" -c "import tensorflow" 2>/dev/null || { echo "compare_original.sh: no TensorFlow in $TF_PYTHON (see the header)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
original() {
    echo "pair $i/$PAIRS: original (TensorFlow)" >&2
    "$TF_PYTHON" -m benchmarks.reference.original_tf_model1 --rounds 5 --loop-steps "$loop" --out "$tmp/tf_$i.json" >/dev/null 2>&1
}
ours() {
    echo "pair $i/$PAIRS: this project (matched configuration)" >&2
    python -m benchmarks --matched-only --rounds 5 --out "$tmp/ours_$i.json" >/dev/null 2>&1
}
for i in $(seq "$PAIRS"); do
    loop=0; ((i == 1)) && loop=${LOOP_STEPS:-1600}
    if ((i % 2)); then original; ours; else ours; original; fi
done
python - "$tmp" "$PAIRS" "$out" <<'PY'
import json, statistics, sys
tmp, pairs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = []
for i in range(1, pairs + 1):
    tf = json.load(open(f"{tmp}/tf_{i}.json"))
    ours = json.load(open(f"{tmp}/ours_{i}.json"))
    m = ours["matched_training"]
    rows.append({"pair": i, "original_train_step": tf["train_step_events_per_s"]["median"],
                 "original_loop_as_written": tf.get("loop_as_written_events_per_s"),
                 "ours_adamw": m["adamw"]["median"], "ours_adamw_fused": m["adamw_fused"]["median"],
                 "loadavg": m["loadavg"][0], "tensorflow": tf["tensorflow"], "original_parameters": tf["parameters"]})
    rows[-1]["ratio_fused_over_original_step"] = rows[-1]["ours_adamw_fused"] / rows[-1]["original_train_step"]
summary = {"pairs": rows, "median_ratio_fused_over_original_step":
           statistics.median(r["ratio_fused_over_original_step"] for r in rows)}
print(f"{'pair':>4} {'original step':>14} {'original loop':>14} {'ours AdamW':>11} {'ours fused':>11} {'ratio':>6} {'load':>5}")
for r in rows:
    loop = f"{r['original_loop_as_written']:.0f}" if r["original_loop_as_written"] else "-"
    print(f"{r['pair']:>4} {r['original_train_step']:>14.0f} {loop:>14} {r['ours_adamw']:>11.0f} "
          f"{r['ours_adamw_fused']:>11.0f} {r['ratio_fused_over_original_step']:>6.2f} {r['loadavg']:>5}")
print(f"median ratio (ours, fused AdamW / original train step): {summary['median_ratio_fused_over_original_step']:.2f}")
json.dump(summary, open(out, "w"), indent=1)
print(f"wrote {out}")
PY
