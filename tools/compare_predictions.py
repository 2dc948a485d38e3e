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

    with uproot.open(args.reference) as f:
        scores = [k for k in f["Events"].keys() if k.startswith("score_")]
    branches = scores + ["event_id", "_label_"]
    ref, cand = read(args.reference, branches), read(args.candidate, branches)
    if len(ref["event_id"]) != len(cand["event_id"]) or not np.array_equal(ref["event_id"], cand["event_id"]):
        sys.exit("error: the two files do not hold the same events in the same order")
    worst = max(float(np.abs(ref[s] - cand[s]).max()) for s in scores)
    nan = sum(int(np.isnan(cand[s]).sum()) for s in scores)
    print(f"{len(ref['event_id'])} events, max |score difference| = {worst:.2e}, NaN in candidate: {nan}")
    if nan or not worst <= args.tolerance:
        sys.exit(f"error: predictions differ by more than {args.tolerance}")


if __name__ == "__main__":
    main()
