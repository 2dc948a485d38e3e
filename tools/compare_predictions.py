"""Compare two weaver prediction files event by event (e.g. PyTorch vs ONNX scores).

    python tools/compare_predictions.py pred.root pred_onnx.root --tolerance 1e-4
"""

import argparse
import sys

import numpy as np
import uproot


def read(path, branches):
    try:
        with uproot.open(path) as f:
            tree = f["Events"]
            missing = [b for b in branches if b not in tree.keys()]
            if missing:
                sys.exit(f"error: {path}: missing branch(es) {', '.join(missing)}")
            return tree.arrays(branches, library="np")
    except (OSError, KeyError) as err:
        sys.exit(f"error: cannot read {path}: {err}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference")
    parser.add_argument("candidate")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()

    keys = {path: branch_names(path) for path in (args.reference, args.candidate)}
    scores = sorted(k for k in keys[args.reference] if k.startswith("score_"))
    if not scores:
        sys.exit(f"error: {args.reference}: no score_* branch: not a weaver prediction file")
    # events are matched by event_id where both files have it (this project's schema), else by entry order
    identity = [b for b in ("event_id", "_label_") if all(b in k for k in keys.values())]
    ref, cand = read(args.reference, scores + identity), read(args.candidate, scores + identity)
    n_ref, n_cand = len(ref[scores[0]]), len(cand[scores[0]])
    if n_ref != n_cand:
        sys.exit(f"error: {args.reference} holds {n_ref} events, {args.candidate} {n_cand}: not the same events")
    for branch in identity:
        if not np.array_equal(ref[branch], cand[branch]):
            sys.exit(f"error: the two files do not hold the same events in the same order ('{branch}' differs)")
    matched = "by event_id" if "event_id" in identity else "by entry order (no event_id branch)"
    worst = max(float(np.abs(ref[s] - cand[s]).max()) for s in scores)
    nan = sum(int(np.isnan(cand[s]).sum()) for s in scores)
    print(f"{n_ref} events matched {matched}, max |score difference| = {worst:.2e}, NaN in candidate: {nan}")
    if nan or not worst <= args.tolerance:
        sys.exit(f"error: predictions differ by more than {args.tolerance}")


def branch_names(path):
    try:
        with uproot.open(path) as f:
            return set(f["Events"].keys())
    except (OSError, KeyError, ValueError) as err:
        sys.exit(f"error: cannot read {path}: {err}")


if __name__ == "__main__":
    main()
