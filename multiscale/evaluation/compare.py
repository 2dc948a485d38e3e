"""Compare two weaver prediction files event by event (``tools/compare_predictions.py``), e.g. the
scores of a PyTorch model and of its ONNX export on the same test events.

Events are matched by ``event_id`` where both files have it (this project's schema), else by entry
order; ``_label_`` must agree too where both files have it. Every problem is a PredictionError
with one line naming the file.
"""

from dataclasses import dataclass

import numpy as np
import uproot

from ..schema import TREE_NAME
from .io import PredictionError

IDENTITY_BRANCHES = ("event_id", "_label_")  # must be equal event by event where both files have them


@dataclass(frozen=True)
class Comparison:
    n_events: int
    by_event_id: bool  # False: matched by entry order
    max_difference: float  # largest |score difference| over every score_* branch (NaN if a score is NaN)
    n_nan: int  # NaN scores in the candidate

    def agrees(self, tolerance):
        # written so that a NaN difference never passes
        return self.n_nan == 0 and self.max_difference <= tolerance

    def summary(self):
        matched = "by event_id" if self.by_event_id else "by entry order (no event_id branch)"
        return (f"{self.n_events} events matched {matched}, max |score difference| = {self.max_difference:.2e}, "
                f"NaN in candidate: {self.n_nan}")


def branch_names(path):
    try:
        with uproot.open(path) as f:
            return set(f[TREE_NAME].keys())
    except (OSError, KeyError, ValueError) as err:
        raise PredictionError(f"cannot read {path}: {err}") from err


def read_branches(path, branches):
    try:
        with uproot.open(path) as f:
            tree = f[TREE_NAME]
            missing = [b for b in branches if b not in tree.keys()]
            if missing:
                raise PredictionError(f"{path}: missing branch(es) {', '.join(missing)}")
            return tree.arrays(branches, library="np")
    except (OSError, KeyError) as err:
        raise PredictionError(f"cannot read {path}: {err}") from err


def compare_files(reference, candidate):
    """Compare every ``score_*`` branch of ``reference`` with ``candidate``'s, event by event."""
    keys = {path: branch_names(path) for path in (reference, candidate)}
    scores = sorted(k for k in keys[reference] if k.startswith("score_"))
    if not scores:
        raise PredictionError(f"{reference}: no score_* branch: not a weaver prediction file")
    identity = [b for b in IDENTITY_BRANCHES if all(b in k for k in keys.values())]
    ref, cand = read_branches(reference, scores + identity), read_branches(candidate, scores + identity)
    n_ref, n_cand = len(ref[scores[0]]), len(cand[scores[0]])
    if n_ref != n_cand:
        raise PredictionError(f"{reference} holds {n_ref} events, {candidate} {n_cand}: not the same events")
    for branch in identity:
        if not np.array_equal(ref[branch], cand[branch]):
            raise PredictionError(f"the two files do not hold the same events in the same order ('{branch}' differs)")
    return Comparison(
        n_events=n_ref,
        by_event_id="event_id" in identity,
        max_difference=max(float(np.abs(ref[s] - cand[s]).max()) for s in scores),
        n_nan=sum(int(np.isnan(cand[s]).sum()) for s in scores),
    )
