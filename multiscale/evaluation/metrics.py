"""Classifier figures of merit: ROC, AUC, background rejection, expected significance.

Conventions: a cut keeps the events with ``score >= threshold``; signal efficiency eps_S and
background efficiency eps_B are fractions of MC events; background rejection = 1 / eps_B.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

SIGNAL_EFFICIENCIES = (0.3, 0.5, 0.8)
# a cut keeping fewer background MC events than this has a meaningless B estimate: not scanned
MIN_BACKGROUND_EVENTS = 10


@dataclass
class Roc:
    signal_efficiency: np.ndarray  # non-decreasing, starts at 0 (nothing kept)
    background_efficiency: np.ndarray  # non-decreasing
    thresholds: np.ndarray


def roc(is_signal, score):
    """Every ROC point (drop_intermediate=False keeps the interpolation exact)."""
    fpr, tpr, thresholds = roc_curve(np.asarray(is_signal, dtype=bool), score, drop_intermediate=False)
    return Roc(tpr, fpr, thresholds)


def auc(is_signal, score):
    return float(roc_auc_score(np.asarray(is_signal, dtype=bool), score))


def background_efficiency_at(curve, signal_efficiency):
    """eps_B at a signal efficiency, linearly interpolated between ROC points.

    Where several points share the wanted eps_S (a horizontal stretch: background removed at
    constant signal) the lowest eps_B is the one a cut achieves, so take the first such point;
    np.interp is undefined on such repeated abscissae.
    """
    eff_s, eff_b = curve.signal_efficiency, curve.background_efficiency
    i = int(np.searchsorted(eff_s, signal_efficiency, side="left"))  # first point with eff_s >= wanted
    if i >= len(eff_s):
        raise ValueError(f"signal efficiency {signal_efficiency} is beyond the ROC curve")
    if eff_s[i] == signal_efficiency or i == 0:
        return float(eff_b[i])
    fraction = (signal_efficiency - eff_s[i - 1]) / (eff_s[i] - eff_s[i - 1])
    return float(eff_b[i - 1] + fraction * (eff_b[i] - eff_b[i - 1]))


def rejection(background_efficiency):
    """1 / eps_B; infinite when no background MC event is left."""
    return float(np.inf) if background_efficiency <= 0 else 1.0 / background_efficiency


def rejection_at(curve, signal_efficiency):
    return rejection(background_efficiency_at(curve, signal_efficiency))


def best_significance(is_signal, score, yield_weight, min_background_events=MIN_BACKGROUND_EVENTS):
    """Scan the score thresholds for the highest expected S / sqrt(B).

    ``yield_weight`` is each event's expected yield (yields.yield_weights), so S and B are sums of
    weights over the kept events. Cuts keeping fewer than ``min_background_events`` background MC
    events are skipped: their B rests on a handful of events and S/sqrt(B) would chase fluctuations.
    Returns a dict; ``significance`` is None when no cut qualifies.
    """
    is_signal = np.asarray(is_signal, dtype=bool)
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    sorted_score = np.asarray(score, dtype=np.float64)[order]
    sig, weight = is_signal[order], np.asarray(yield_weight, dtype=np.float64)[order]
    s_cum = np.cumsum(np.where(sig, weight, 0.0))
    b_cum = np.cumsum(np.where(sig, 0.0, weight))
    n_s_cum, n_b_cum = np.cumsum(sig), np.cumsum(~sig)
    # a threshold keeps all events with equal score: evaluate at the last event of each tie group
    last_of_group = np.r_[sorted_score[1:] != sorted_score[:-1], True]
    valid = last_of_group & (n_b_cum >= min_background_events) & (b_cum > 0)
    result = {
        "significance": None,
        "threshold": None,
        "S": None,
        "B": None,
        "signal_efficiency": None,
        "background_efficiency": None,
        "n_signal_pass": None,
        "n_background_pass": None,
        "min_background_events": int(min_background_events),
    }
    if not valid.any():
        result["note"] = f"no score cut keeps >= {min_background_events} background MC events"
        return result
    z = np.full(len(sorted_score), -np.inf)
    z[valid] = s_cum[valid] / np.sqrt(b_cum[valid])
    best = int(np.argmax(z))
    result.update(
        significance=float(z[best]),
        threshold=float(sorted_score[best]),
        S=float(s_cum[best]),
        B=float(b_cum[best]),
        signal_efficiency=float(n_s_cum[best] / sig.sum()),
        background_efficiency=float(n_b_cum[best] / (~sig).sum()),
        n_signal_pass=int(n_s_cum[best]),
        n_background_pass=int(n_b_cum[best]),
    )
    return result
