"""A score cut that keeps the same fraction of the background at every m_JJ (mass decorrelation).

A plain cut ``score >= t`` keeps more background where the background looks more like the signal; for a
tagger of a resonance at m_H that is near m_H, so the cut carves a shape into the background's m_JJ
(smooth_background.sculpting_check measures it) that a smooth function need not follow. The fix of the
LHC's boosted-resonance searches is a cut whose threshold depends on the mass: the "designed decorrelated
tagger" (DDT; Dolen, Harris, Marzani, Rappoccio, Tran, JHEP 05 (2016) 156; CMS's N2^DDT takes the
threshold as the background's quantile in bins of the mass). Here:

    t(m) is set on the *validation* background so that in every m_JJ bin the same weighted fraction
    eps of the background passes; eps is the background efficiency of the plain cut chosen on
    validation, so the two cuts keep the same background overall.

The bins hold equal shares of the validation background (as many as leave ``min_effective_passing``
effective MC events passing the plain cut in each, 1 to ``max_bins``); the logit of t is interpolated
linearly in ln m between the bins' mean ln m, and beyond the outer ones with the outer segments' slopes, so
the cut does not jump at a bin edge. On the test sample the background's m_JJ shape is then kept up to the MC noise of the
validation quantiles, which the sculpting check of the test sample also sees (tests/test_decorrelation.py).
"""

from dataclasses import dataclass

import numpy as np

from .cutbased import dijet_mass
from .smooth_background import weighted_quantile_edges
from .yields import event_index, mc_statistics, yield_weights

MIN_EFFECTIVE_PASSING = 10  # effective background MC events passing per mass bin (its quantile's precision)
MAX_BINS = 8
_SCORE_EPSILON = 1e-12  # scores are probabilities (softmax): their logit is finite inside (eps, 1 - eps)


@dataclass(frozen=True)
class MassDecorrelatedCut:
    """``score >= threshold(m_JJ)``, the threshold interpolated in ln m between ``masses`` (GeV)."""

    masses: np.ndarray  # the interpolation nodes: each mass bin's weighted mean of ln m, as a mass
    thresholds: np.ndarray  # the threshold at each node
    edges: np.ndarray  # the validation mass bins (GeV)
    background_efficiency: float  # eps: the weighted fraction of the validation background kept in each bin

    def threshold(self, mass):
        """t(m): logit(t) linear in ln m between the nodes and, with the slope of the outer segment, beyond them
        (the outer bins of a falling spectrum are wide, and a flat t there lets the tail's rising scores
        through; the logit keeps the extrapolated threshold inside (0, 1))."""
        log_mass, nodes, logits = np.log(np.asarray(mass, dtype=np.float64)), np.log(self.masses), _logit(self.thresholds)
        inside = np.interp(log_mass, nodes, logits)
        if len(nodes) < 2:
            return _expit(inside)
        low_slope, high_slope = np.diff(logits)[[0, -1]] / np.diff(nodes)[[0, -1]]
        below = logits[0] + low_slope * (log_mass - nodes[0])
        above = logits[-1] + high_slope * (log_mass - nodes[-1])
        return _expit(np.where(log_mass < nodes[0], below, np.where(log_mass > nodes[-1], above, inside)))

    def passes(self, mass, score):
        return np.asarray(score) >= self.threshold(mass)

    def summary(self):
        """JSON-ready numbers of the cut."""
        return {"background_efficiency": self.background_efficiency, "masses_gev": self.masses.tolist(),
                "thresholds": self.thresholds.tolist(), "edges_gev": self.edges.tolist()}


def _logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), _SCORE_EPSILON, 1 - _SCORE_EPSILON)
    return np.log(p) - np.log1p(-p)


def _expit(x):
    return 1 / (1 + np.exp(-x))


def threshold_keeping(score, weight, efficiency):
    """The highest threshold t with a weighted fraction of at least ``efficiency`` at score >= t."""
    order = np.argsort(-np.asarray(score), kind="stable")
    ordered, cumulative = np.asarray(score)[order], np.cumsum(np.asarray(weight, dtype=np.float64)[order])
    index = int(np.searchsorted(cumulative, efficiency * cumulative[-1] * (1 - 1e-12)))
    return float(ordered[min(index, len(ordered) - 1)])


def fit_decorrelated_cut(mass, score, weight, efficiency, event=None, min_effective_passing=MIN_EFFECTIVE_PASSING,
                         max_bins=MAX_BINS):
    """The :class:`MassDecorrelatedCut` keeping the fraction ``efficiency`` of the background in every m_JJ bin,
    from the background events' ``mass`` (GeV), ``score`` and ``weight`` (yields; ``event``: yields.event_index,
    so that the truth-tag copies of one event count once in the effective events)."""
    mass, score, weight = (np.asarray(v, dtype=np.float64) for v in (mass, score, weight))
    if not 0 < efficiency <= 1:
        raise ValueError(f"the background efficiency of the cut must be in (0, 1], got {efficiency}")
    # the effective events the plain cut of this efficiency keeps (not N_eff x efficiency: the weights that pass
    # are not those of the whole)
    plain = score >= threshold_keeping(score, weight, efficiency)
    n_passing = mc_statistics(weight[plain], None if event is None else np.asarray(event)[plain])["effective_events"]
    n_bins = int(np.clip(n_passing // min_effective_passing, 1, max_bins))
    edges = weighted_quantile_edges(mass, weight, n_bins)
    index = np.clip(np.searchsorted(edges, mass, side="right") - 1, 0, len(edges) - 2)
    masses, thresholds = [], []
    for k in range(len(edges) - 1):
        inside = index == k
        if not inside.any() or weight[inside].sum() <= 0:
            continue
        masses.append(np.exp(np.average(np.log(mass[inside]), weights=weight[inside])))
        thresholds.append(threshold_keeping(score[inside], weight[inside], efficiency))
    return MassDecorrelatedCut(np.array(masses), np.array(thresholds), edges, float(efficiency))


def decorrelated_cut_for(validation, luminosity_fb, threshold):
    """The :class:`MassDecorrelatedCut` of a Prediction's background (the validation sample) with the background
    efficiency of the plain cut ``score >= threshold`` on it."""
    background = ~validation.is_signal
    weight = yield_weights(validation, luminosity_fb)[background]
    score = validation.score[background]
    efficiency = float(weight[score >= threshold].sum() / weight.sum())
    return fit_decorrelated_cut(dijet_mass(validation.arrays)[background], score, weight, efficiency,
                                event_index(validation)[background])


def passing(prediction, cut):
    """Which entries of a Prediction pass ``cut`` (a MassDecorrelatedCut)."""
    return cut.passes(dijet_mass(prediction.arrays), prediction.score)

