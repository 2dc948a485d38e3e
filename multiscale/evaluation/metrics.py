"""Classifier figures of merit: ROC, AUC, background rejection, expected significance.

Conventions: a cut keeps the events with ``score >= threshold``; background rejection = 1 / eps_B.
Given the per-event expected yields (``yields.yield_weights``) as ``sample_weight``, the signal and
background efficiencies eps_S, eps_B are fractions of the expected yields: the background is the
cross-section weighted QCD + ttbar mixture and weighted MC counts with its weights. Without weights
they are fractions of MC events.

Signed weights (NLO samples) are used as they are: the efficiencies are ratios of signed sums, so
the ROC curve may step back where negative-weight events are crossed; the AUC is then the
trapezoidal area of that curve (what roc_auc_score, which refuses such curves, gives otherwise).

Every working point carries the effective number of background MC events it keeps,
N_eff = (sum y)^2 / sum(y^2) (see yields.py); one with N_eff < ``MIN_BACKGROUND_EVENTS`` rests on a
handful of MC events and is flagged (or, in the S/sqrt(B) scan, not considered).

Every choice on validation, never on test: the best cut can be chosen on a validation sample
(:func:`choose_score_cut`) and evaluated on the test sample (:func:`significance_at`;
:func:`validated_significance` does both for two Predictions). :func:`best_significance` chooses
and evaluates on one sample, which biases its S/sqrt(B) upward.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from .yields import event_index, yield_weights

SIGNAL_EFFICIENCIES = (0.3, 0.5, 0.8)
# a working point keeping fewer effective background MC events than this has a meaningless B estimate: the
# default N_eff floor (``min_background_events``) of the score cuts, the cuts, the limits' bins, the stitching
# check and tools/evaluate.py --min-background-events; the mass scan sets its own (config min_events)
MIN_BACKGROUND_EVENTS = 10
# n equal weights give N_eff = n only up to rounding: compare with this relative slack
_ROUNDING = 1e-9


def enough_events(effective_events, minimum):
    """N_eff >= minimum (elementwise), tolerant to rounding."""
    return np.asarray(effective_events) >= minimum * (1 - _ROUNDING)


def effective_events(sumw, sumw2):
    """(sum w)^2 / sum(w^2), elementwise; 0 where nothing is kept."""
    sumw, sumw2 = np.asarray(sumw, dtype=np.float64), np.asarray(sumw2, dtype=np.float64)
    return np.divide(sumw**2, sumw2, out=np.zeros_like(sumw2), where=sumw2 > 0)


@dataclass
class Roc:
    signal_efficiency: np.ndarray  # starts at 0 (nothing kept); non-decreasing unless weights are negative
    background_efficiency: np.ndarray  # idem
    thresholds: np.ndarray
    background_effective_events: np.ndarray  # N_eff of the background kept at each point


def _weights(n, sample_weight):
    return np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)


def sumw2_increments(weight, event=None):
    """Per entry, in the order given, how much sum_e (sum of the weights of e's entries so far)^2 grows
    when the entry is added after those before it: w^2 when ``event`` is None (every entry its own
    event), else w (2 P + w), P the weight of the same event's earlier entries. Their cumulative sum
    is the sumw2 of every prefix, with the copies of one event summed before squaring (yields.py)."""
    weight = np.asarray(weight, dtype=np.float64)
    if event is None:
        return np.square(weight)
    _, inverse = np.unique(np.asarray(event), return_inverse=True)
    inverse = inverse.ravel()
    by_event = np.argsort(inverse, kind="stable")  # each event's entries together, in the given order
    grouped, w = inverse[by_event], weight[by_event]
    first = np.r_[True, grouped[1:] != grouped[:-1]]
    rank = np.arange(len(w)) - np.maximum.accumulate(np.where(first, np.arange(len(w)), 0))
    previous = np.zeros_like(w)
    for r in range(1, int(rank.max(initial=0)) + 1):  # copies per event: a handful
        at = np.flatnonzero(rank == r)
        previous[at] = previous[at - 1] + w[at - 1]
    increments = np.empty_like(weight)
    increments[by_event] = w * (2.0 * previous + w)
    return increments


def kept_sums(score, weight, thresholds, event=None):
    """sum(w) and sumw2 of the events with ``score >= t``, for each threshold t (sumw2 summed per
    ``event`` before squaring when given: see sumw2_increments)."""
    order = np.argsort(score, kind="stable")
    sorted_score, sorted_weight = np.asarray(score)[order], np.asarray(weight, dtype=np.float64)[order]
    # suffix sums: entry k sums the events k..end of the ascending order (entry n: nothing)
    sumw = np.r_[np.cumsum(sorted_weight[::-1])[::-1], 0.0]
    descending_event = None if event is None else np.asarray(event)[order][::-1]
    sumw2 = np.r_[np.cumsum(sumw2_increments(sorted_weight[::-1], descending_event))[::-1], 0.0]
    first_kept = np.searchsorted(sorted_score, thresholds, side="left")
    return sumw[first_kept], sumw2[first_kept]


def roc(is_signal, score, sample_weight=None, event=None):
    """Every ROC point (drop_intermediate=False keeps the interpolation exact), efficiencies weighted
    by ``sample_weight`` (the yield weights) when given; the background N_eff of each point counts
    the entries of one ``event`` (yields.event_index) as one MC event."""
    is_signal = np.asarray(is_signal, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    fpr, tpr, thresholds = roc_curve(is_signal, score, sample_weight=sample_weight, drop_intermediate=False)
    weight = _weights(len(score), sample_weight)
    background_event = None if event is None else np.asarray(event)[~is_signal]
    sumw, sumw2 = kept_sums(score[~is_signal], weight[~is_signal], thresholds, background_event)
    return Roc(tpr, fpr, thresholds, effective_events(sumw, sumw2))


def auc(is_signal, score, sample_weight=None):
    """Area under the (weighted) ROC curve; with negative weights, the trapezoidal area of the curve."""
    if sample_weight is not None and np.any(np.asarray(sample_weight) < 0):
        curve = roc(is_signal, score, sample_weight)
        return float(np.trapezoid(curve.signal_efficiency, curve.background_efficiency))
    return float(roc_auc_score(np.asarray(is_signal, dtype=bool), score, sample_weight=sample_weight))


def _locate(curve, signal_efficiency):
    """(i, fraction): the wanted eps_S lies ``fraction`` of the way from ROC point i-1 to point i,
    i being the first point with eps_S >= wanted (fraction 1: exactly at point i).

    Where several points share the wanted eps_S (a horizontal stretch: background removed at
    constant signal) the lowest eps_B is the one a cut achieves, so the first such point is taken;
    np.interp is undefined on such repeated abscissae. Weighted efficiencies are ratios of cumulative
    sums, equal only up to rounding: values within ``_ROUNDING`` count as equal.
    """
    eff_s = curve.signal_efficiency
    reached = eff_s >= signal_efficiency - _ROUNDING  # not searchsorted: signed weights make eff_s step back
    if not reached.any():
        raise ValueError(f"signal efficiency {signal_efficiency} is beyond the ROC curve")
    i = int(np.argmax(reached))
    if abs(eff_s[i] - signal_efficiency) <= _ROUNDING or i == 0:
        return i, 1.0
    return i, (signal_efficiency - eff_s[i - 1]) / (eff_s[i] - eff_s[i - 1])


def background_efficiency_at(curve, signal_efficiency):
    """eps_B at a signal efficiency, linearly interpolated between ROC points."""
    i, fraction = _locate(curve, signal_efficiency)
    eff_b = curve.background_efficiency
    if fraction == 1.0:
        return float(eff_b[i])
    return float(eff_b[i - 1] + fraction * (eff_b[i] - eff_b[i - 1]))


def rejection(background_efficiency):
    """1 / eps_B; infinite when no background is left."""
    return float(np.inf) if background_efficiency <= 0 else 1.0 / background_efficiency


def rejection_at(curve, signal_efficiency):
    return rejection(background_efficiency_at(curve, signal_efficiency))


def working_point(curve, signal_efficiency, min_background_events=MIN_BACKGROUND_EVENTS):
    """The ROC at a signal efficiency: {signal_efficiency, background_efficiency, rejection,
    background_effective_events, low_statistics}. N_eff is that of the cut reaching the wanted eps_S
    (the first ROC point at or above it); low_statistics is True when N_eff < min_background_events."""
    i, _ = _locate(curve, signal_efficiency)
    eff_b = background_efficiency_at(curve, signal_efficiency)
    n_eff = float(curve.background_effective_events[i])
    return {
        "signal_efficiency": float(signal_efficiency),
        "background_efficiency": eff_b,
        "rejection": rejection(eff_b),
        "background_effective_events": n_eff,
        "low_statistics": not bool(enough_events(n_eff, min_background_events)),
    }


def _descending_scan(is_signal, score, yield_weight, event=None):
    """Cumulative sums over the events sorted by descending score: entry i describes the cut keeping
    events 0..i (S, B, sumw2 of B with the copies of one ``event`` summed before squaring, N_eff,
    MC event counts); ``valid`` marks the last event of each group of equal scores (a threshold keeps
    all of them)."""
    is_signal = np.asarray(is_signal, dtype=bool)
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    sorted_score = np.asarray(score, dtype=np.float64)[order]
    sig, weight = is_signal[order], np.asarray(yield_weight, dtype=np.float64)[order]
    b_cum = np.cumsum(np.where(sig, 0.0, weight))
    b2_cum = np.cumsum(sumw2_increments(np.where(sig, 0.0, weight), None if event is None else np.asarray(event)[order]))
    return {
        "score": sorted_score,
        "S": np.cumsum(np.where(sig, weight, 0.0)),
        "B": b_cum,
        "B2": b2_cum,
        "n_eff": effective_events(b_cum, b2_cum),
        "n_signal": np.cumsum(sig),
        "n_background": np.cumsum(~sig),
        "last_of_group": np.r_[sorted_score[1:] != sorted_score[:-1], True],
    }


def _empty_cut_result(min_background_events):
    keys = ("significance", "threshold", "S", "B", "B_stat_uncertainty", "background_effective_events",
            "signal_efficiency", "background_efficiency", "n_signal_pass", "n_background_pass")
    return {**dict.fromkeys(keys), "min_background_events": int(min_background_events)}


def _cut_result(scan, index, min_background_events):
    """The numbers of the cut keeping the events 0..index of ``scan`` (index -1: nothing kept)."""
    result = _empty_cut_result(min_background_events)
    total_s, total_b = float(scan["S"][-1]), float(scan["B"][-1])
    s, b = (0.0, 0.0) if index < 0 else (float(scan["S"][index]), float(scan["B"][index]))
    b2 = 0.0 if index < 0 else float(scan["B2"][index])
    result.update(
        significance=s / np.sqrt(b) if b > 0 else None,
        S=s,
        B=b,
        B_stat_uncertainty=float(np.sqrt(b2)),
        background_effective_events=float(effective_events(b, b2)),
        signal_efficiency=s / total_s if total_s else None,
        background_efficiency=b / total_b if total_b else None,
        n_signal_pass=0 if index < 0 else int(scan["n_signal"][index]),
        n_background_pass=0 if index < 0 else int(scan["n_background"][index]),
    )
    return result


def best_significance(is_signal, score, yield_weight, min_background_events=MIN_BACKGROUND_EVENTS, event=None):
    """Scan the score thresholds for the highest expected S / sqrt(B), chosen and evaluated on this one sample.

    ``yield_weight`` is each event's expected yield (yields.yield_weights), so S and B are sums of
    weights over the kept events and the efficiencies are fractions of the total S and B. Cuts whose
    background has fewer than ``min_background_events`` effective MC events (N_eff) are skipped:
    their B rests on a handful of events and S/sqrt(B) would chase fluctuations. ``event``
    (yields.event_index): the entries of one generated event count as one MC event in N_eff.
    Returns a dict; ``significance`` is None when no cut qualifies.

    Choosing the cut on the sample that is then quoted favours its downward background fluctuations,
    so the quoted S/sqrt(B) is biased upward (+8.7% on average at the study's N_eff floor of 30 on a
    toy whose S/sqrt(B) is the same at every cut:
    tests/test_limits.py::test_best_cut_chosen_on_the_test_sample_is_biased_upward). Choose on a
    validation sample and evaluate on the test sample instead: :func:`validated_significance` (or
    :func:`choose_score_cut` then :func:`significance_at`).
    """
    scan = _descending_scan(is_signal, score, yield_weight, event)
    valid = scan["last_of_group"] & enough_events(scan["n_eff"], min_background_events) & (scan["B"] > 0)
    if not valid.any():
        result = _empty_cut_result(min_background_events)
        result["note"] = (
            f"no score cut keeps >= {min_background_events} background MC events (effective, (Σw)²/Σw²)"
        )
        return result
    z = np.full(len(scan["score"]), -np.inf)
    z[valid] = scan["S"][valid] / np.sqrt(scan["B"][valid])
    best = int(np.argmax(z))
    return {**_cut_result(scan, best, min_background_events), "threshold": float(scan["score"][best])}


# --- every choice on the validation sample, the number on the test sample -------------------------------------


def choose_score_cut(is_signal, score, yield_weight, min_background_events=MIN_BACKGROUND_EVENTS, event=None):
    """The score threshold of the best S/sqrt(B) on this sample, meant to be the *validation* sample
    (see :func:`best_significance`); None when no cut keeps ``min_background_events`` effective
    background MC events. Apply it to the test sample with :func:`significance_at`."""
    return best_significance(is_signal, score, yield_weight, min_background_events, event)["threshold"]


def significance_at(is_signal, score, yield_weight, threshold, min_background_events=MIN_BACKGROUND_EVENTS,
                    event=None):
    """S/sqrt(B) and the other numbers of :func:`best_significance` for the fixed cut ``score >= threshold``
    (a threshold chosen on another sample), on this sample. Like a fixed cut-based selection it is
    always reported: ``low_statistics`` (and a ``note``) flag a background of fewer than
    ``min_background_events`` effective MC events; ``significance`` is None when no background
    passes or ``threshold`` is None (no cut was chosen)."""
    if threshold is None:
        return {**_empty_cut_result(min_background_events), "low_statistics": True,
                "note": "no score cut was chosen on the validation sample"}
    scan = _descending_scan(is_signal, score, yield_weight, event)
    index = int(np.searchsorted(-scan["score"], -float(threshold), side="right")) - 1  # the last event >= threshold
    result = {**_cut_result(scan, index, min_background_events), "threshold": float(threshold)}
    result["low_statistics"] = not bool(enough_events(result["background_effective_events"], min_background_events))
    if result["significance"] is None:
        result["note"] = f"no background MC event passes score >= {float(threshold):.6g}: S/sqrt(B) undefined"
    elif result["low_statistics"]:
        result["note"] = (f"B rests on {result['background_effective_events']:.1f} effective background MC events "
                          f"(< {min_background_events}): B and S/sqrt(B) are unreliable")
    return result


def validated_significance(validation, test, luminosity_fb, min_background_events=MIN_BACKGROUND_EVENTS):
    """The best cut chosen on ``validation``, S/sqrt(B) evaluated on ``test`` (two ``io.Prediction``s of
    disjoint events, each normalised to the expected yields at ``luminosity_fb`` on its own):
    :func:`significance_at` of the test sample, plus ``chosen_on_validation`` (what
    :func:`best_significance` says on the validation sample)."""
    def arrays(prediction):
        return (prediction.is_signal, prediction.score, yield_weights(prediction, luminosity_fb),
                min_background_events, event_index(prediction))

    chosen = best_significance(*arrays(validation))
    is_signal, score, weights, _, event = arrays(test)
    result = significance_at(is_signal, score, weights, chosen["threshold"], min_background_events, event)
    return {**result, "chosen_on_validation": chosen}
