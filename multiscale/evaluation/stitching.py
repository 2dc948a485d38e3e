"""Does a stitched background (heavy-flavour vetoed + filtered samples) reproduce the inclusive one?

Both are compared in weighted yields at a luminosity, per bin of (leading fat-jet pT) x (truth-tag
class: <= 1, 2, 3, 4 b-tagged subjets), with the test statistic

    chi2 = d^T (V_inclusive + V_stitched)^-1 d,   d = the yield differences per bin,

V the covariance of a sample's bin yields from its MC statistics: sum over generated events of
v_e v_e^T, v_e the event's yields in the bins (the truth-tag copies of one event fall into several
classes, so the bins are correlated, and each event is one MC event). A bin resting on a few
weighted events has a skewed yield and an unreliable variance (two halves of one inclusive sample
gave chi2 = 21 for 12 bins), so within each tag class the pT bins are merged from the top until
both samples hold at least ``metrics.MIN_BACKGROUND_EVENTS`` effective MC events (a class short of them
joins a neighbouring class). Under correct stitching chi2 then follows a chi2 distribution with as many
degrees of freedom as merged bins; a wrong filter
efficiency (the filtered sample's cross section) or a missing veto (the inclusive sample in place
of the vetoed one: the heavy-flavour events counted twice) give a small p-value.

A normalisation error of the filtered sample moves only the bins where it contributes (3 and 4
tags), and the chi2 dilutes it over every merged bin's degree of freedom: :func:`filtered_scale`
fits the one number such an error changes, the filtered part's scale mu, by generalised least
squares with the same covariances. Its error is the sensitivity of the whole check to the
filtered normalisation; it is set by the heavy-flavour events on both sides (the filtered
sample's effective MC events, and the few heavy-flavour events of the inclusive sample), not by
the binning: tests/test_stitching.py quotes it for its samples.
"""

import numpy as np
from scipy.stats import chi2 as chi2_distribution
from scipy.stats import norm

from ..schema import PHASE_SPACES, TAG_CLASSES
from .metrics import MIN_BACKGROUND_EVENTS
from .yields import event_index, phase_space_of, tag_class_of, tag_count, yield_weights

PT_EDGES = (250.0, 400.0, 600.0, np.inf)  # GeV, leading fat jet


def bin_of(events, pt_edges=PT_EDGES):
    """Each entry's bin (pT bin x tag class), -1 outside the pT range."""
    pt = np.asarray(events.arrays["fj1_pt"], dtype=np.float64)
    pt_bin = np.searchsorted(pt_edges, pt, side="right") - 1
    tag_bin = tag_class_of(tag_count(events.arrays))
    n_pt = len(pt_edges) - 1
    inside = (pt_bin >= 0) & (pt_bin < n_pt)
    return np.where(inside, pt_bin * len(TAG_CLASSES) + tag_bin, -1), n_pt * len(TAG_CLASSES)


def binned(events, luminosity_fb, pt_edges=PT_EDGES, part=None):
    """(yields per bin, their covariance) of a background sample (a Prediction of event files), or of
    its entries ``part`` (a boolean mask) at the yields they have in the whole."""
    bins, n_bins = bin_of(events, pt_edges)
    y = yield_weights(events, luminosity_fb)
    inside = bins >= 0 if part is None else (bins >= 0) & np.asarray(part, dtype=bool)
    _, event = np.unique(event_index(events)[inside], return_inverse=True)
    per_event = np.zeros((event.max(initial=-1) + 1, n_bins))
    np.add.at(per_event, (event.ravel(), bins[inside]), y[inside])
    return per_event.sum(axis=0), per_event.T @ per_event


def merged_bins(samples, min_background_events=MIN_BACKGROUND_EVENTS):
    """Group index of every (pT, class) bin: within each class the pT bins merged from the top until every
    sample of ``samples`` ((yields, covariance) pairs) holds min_background_events effective MC events; a class
    short of them altogether joins the next class's lowest group (the last class: the previous one's)."""
    n_classes = len(TAG_CLASSES)
    n_pt = len(samples[0][0]) // n_classes

    def enough(bins):
        return all(y[bins].sum() > 0 and y[bins].sum() ** 2 / v[np.ix_(bins, bins)].sum() >= min_background_events
                   for y, v in samples)

    groups, group = [], []  # lists of flat bin indices
    for c in range(n_classes):
        current, class_groups = [], []
        for p in reversed(range(n_pt)):
            current.append(p * n_classes + c)
            if enough(current):
                class_groups.append(current)
                current = []
        if current:  # the low-pT remainder joins the class's lowest group, or the class is short altogether
            if class_groups:
                class_groups[-1] += current
            else:
                group += current
                continue
        if group:  # a short class below joins this class's lowest group
            class_groups[-1] += group
            group = []
        groups += class_groups
    if group:
        if groups:
            groups[-1] += group
        else:
            groups.append(group)
    index = np.empty(n_pt * n_classes, dtype=np.int64)
    for g, bins in enumerate(groups):
        index[bins] = g
    return index


def filtered_scale(inclusive, stitched, luminosity_fb, pt_edges=PT_EDGES):
    """The scale mu of the stitched sample's filtered part that fits the inclusive sample best, with
    the full covariance (generalised least squares over the unmerged bins, empty ones left out):
    y_inclusive = y_vetoed + mu y_filtered. {mu, error, pull (mu - 1) / error, p_value (two-sided)}.
    One parameter aimed at the filtered normalisation: where the chi2 spreads a normalisation error
    over every bin's degrees of freedom, this test gathers it."""
    filtered = phase_space_of(stitched) == PHASE_SPACES["hf_filtered"]
    y_inc, v_inc = binned(inclusive, luminosity_fb, pt_edges)
    y_veto, v_veto = binned(stitched, luminosity_fb, pt_edges, ~filtered)
    y_filt, v_filt = binned(stitched, luminosity_fb, pt_edges, filtered)
    used = (np.diag(v_inc) + np.diag(v_veto) + np.diag(v_filt)) > 0
    v = (v_inc + v_veto + v_filt)[np.ix_(used, used)]
    f, d = y_filt[used], (y_inc - y_veto)[used]
    information = f @ np.linalg.solve(v, f)
    mu = float(f @ np.linalg.solve(v, d) / information)
    error = float(1.0 / np.sqrt(information))
    pull = (mu - 1.0) / error
    return {"mu": mu, "error": error, "pull": pull, "p_value": float(2.0 * norm.sf(abs(pull)))}


def compare(inclusive, stitched, luminosity_fb, pt_edges=PT_EDGES, min_background_events=MIN_BACKGROUND_EVENTS):
    """{chi2, ndf, p_value, inclusive, stitched (yields per bin), pulls (per merged bin), groups (the
    merged bin of every bin), total (both totals and the pull of their difference), per_tag_class
    (the same summed over pT)}."""
    y_inc, v_inc = binned(inclusive, luminosity_fb, pt_edges)
    y_sti, v_sti = binned(stitched, luminosity_fb, pt_edges)
    groups = merged_bins([(y_inc, v_inc), (y_sti, v_sti)], min_background_events)
    merge = np.zeros((groups.max() + 1, len(groups)))
    merge[groups, np.arange(len(groups))] = 1.0
    v_both = v_inc + v_sti
    d, v = merge @ (y_inc - y_sti), merge @ v_both @ merge.T
    chi2 = float(d @ np.linalg.solve(v, d))
    ndf = len(d)
    pulls = d / np.sqrt(np.diag(v))

    def summed(weights):
        """(yield of both, pull) of the bins combined with ``weights``."""
        a, b = weights @ y_inc, weights @ y_sti
        sigma = np.sqrt(weights @ v_both @ weights)
        return {"inclusive": float(a), "stitched": float(b), "pull": float((a - b) / sigma) if sigma > 0 else 0.0}

    n_classes = len(TAG_CLASSES)
    classes = np.arange(len(y_inc)) % n_classes
    return {
        "chi2": chi2,
        "ndf": ndf,
        "p_value": float(chi2_distribution.sf(chi2, ndf)),
        "inclusive": y_inc.tolist(),
        "stitched": y_sti.tolist(),
        "pulls": pulls.tolist(),
        "groups": groups.tolist(),
        "total": summed(np.ones(len(y_inc))),
        "per_tag_class": [summed((classes == c).astype(float)) for c in range(n_classes)],
        "filtered_scale": filtered_scale(inclusive, stitched, luminosity_fb, pt_edges),
    }
