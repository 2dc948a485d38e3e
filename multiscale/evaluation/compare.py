"""Compare two weaver prediction files event by event (``tools/compare_predictions.py``), e.g. the
scores of a PyTorch model and of its ONNX export on the same test events.

Events are matched by ``event_id`` where both files have it (this project's schema), else by entry
order; ``_label_`` must agree too where both files have it. Every problem is a PredictionError
with one line naming the file.
"""

from dataclasses import dataclass

import numpy as np

from .io import PredictionError, events_tree

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


def read_scores(path, scores=None):
    """The ``score_*`` branches (``scores``: these, all required) and the identity branches present."""
    with events_tree(path) as tree:
        available = set(tree.keys())
        if scores is None:
            scores = sorted(k for k in available if k.startswith("score_"))
            if not scores:
                raise PredictionError(f"{path}: no score_* branch: not a weaver prediction file")
        missing = [b for b in scores if b not in available]
        if missing:
            raise PredictionError(f"{path}: missing branch(es) {', '.join(missing)}")
        return tree.arrays(scores + [b for b in IDENTITY_BRANCHES if b in available], library="np")


def compare_files(reference, candidate):
    """Compare every ``score_*`` branch of ``reference`` with ``candidate``'s, event by event."""
    ref = read_scores(reference)  # each file opened and read once
    scores = sorted(k for k in ref if k.startswith("score_"))
    cand = read_scores(candidate, scores)
    identity = [b for b in IDENTITY_BRANCHES if b in ref and b in cand]
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
