"""A classic cut-based hh -> 4b reference analysis, computed from the observers of the prediction file.

An event is selected when

1. both fat jets have a soft-drop mass inside the Higgs window (default 90-150 GeV, edges included),
2. the two fat jets together hold at least ``min_btags`` b-tagged subjets (default 3; 4 is tighter),
3. the di-fat-jet invariant mass m_jj (fj1 + fj2 four-vectors from pt, eta, phi, mass) lies in
   [lo * m_H, hi * m_H] (default [0.8, 1.1] * m_H: the window is asymmetric because FSR and
   out-of-cone radiation pull m_jj below m_H).

It does not use the classifier score; it is drawn as a single point on the ROC. Efficiencies are
fractions of the expected yields (weighted MC, see yields.py).

:func:`optimise` picks the selection per mass point: it scans a grid of the three requirements
(:class:`OptimisationGrid`) in one pass over the events (a cumulative histogram over the grid) and
keeps the best expected S/sqrt(B) among the working points whose background holds at least
``MIN_BACKGROUND_EVENTS`` effective MC events; :func:`cut_based_limit` gives the expected limit of a
selection (one bin, or bins of m_jj).
"""

from dataclasses import asdict, dataclass

import numpy as np
import vector

from ..definitions import BENCHMARK_MASS
from .limits import DEFAULT_CL, binned_yields, btag_variations, limit_from_histograms, signal_cross_section
from .metrics import MIN_BACKGROUND_EVENTS, effective_events, enough_events, rejection
from .yields import event_index, mc_statistics, tag_count, yield_weights


@dataclass(frozen=True)
class CutBasedSelection:
    mH: float = BENCHMARK_MASS  # GeV, centre of the m_jj window
    sdmass_window: tuple = (90.0, 150.0)  # GeV, applied to both fat jets
    min_btags: int = 3  # b-tagged subjets summed over both fat jets
    mjj_window: tuple = (0.8, 1.1)  # fractions of mH

    def describe(self):
        lo, hi = self.sdmass_window
        mlo, mhi = (f * self.mH for f in self.mjj_window)
        return (
            f"{lo:g} <= m_SD(fj1), m_SD(fj2) <= {hi:g} GeV; nbtag(fj1) + nbtag(fj2) >= {self.min_btags}; "
            f"{mlo:g} <= m_jj <= {mhi:g} GeV"
        )

    def short(self):
        """One line for a plot legend."""
        lo, hi = self.sdmass_window
        mlo, mhi = (f * self.mH for f in self.mjj_window)
        return f"{lo:g} ≤ m_SD ≤ {hi:g} GeV, ≥ {self.min_btags} b-tags, {mlo:g} ≤ m_jj ≤ {mhi:g} GeV"

    def as_dict(self):
        return {**asdict(self), "definition": self.describe()}


def dijet_mass(arrays):
    """Invariant mass of the two leading fat jets (GeV)."""
    jets = [
        vector.array({f: np.asarray(arrays[f"{jet}_{f}"], dtype=np.float64) for f in ("pt", "eta", "phi", "mass")})
        for jet in ("fj1", "fj2")
    ]
    return np.asarray((jets[0] + jets[1]).mass)


def select(arrays, selection, mjj=None):
    """Boolean mask of the events passing ``selection`` (``mjj``: dijet_mass(arrays), when already computed)."""
    lo, hi = selection.sdmass_window
    in_higgs_window = np.ones(len(arrays["fj1_sdmass"]), dtype=bool)
    for jet in ("fj1", "fj2"):
        in_higgs_window &= (arrays[f"{jet}_sdmass"] >= lo) & (arrays[f"{jet}_sdmass"] <= hi)
    enough_btags = tag_count(arrays) >= selection.min_btags
    mjj = dijet_mass(arrays) if mjj is None else mjj
    in_mass_window = (mjj >= selection.mjj_window[0] * selection.mH) & (mjj <= selection.mjj_window[1] * selection.mH)
    return in_higgs_window & enough_btags & in_mass_window


def evaluate(prediction, selection, luminosity_fb, min_background_events=MIN_BACKGROUND_EVENTS):
    """Efficiencies (fractions of the expected yields), rejection, S, B, background MC statistics and
    S/sqrt(B) of the selection on one sample."""
    passed = select(prediction.arrays, selection)
    is_signal = prediction.is_signal
    yields = yield_weights(prediction, luminosity_fb)
    event = event_index(prediction)
    background_all = mc_statistics(yields[~is_signal], event[~is_signal])
    background = mc_statistics(yields[passed & ~is_signal], event[passed & ~is_signal])
    s, b = float(yields[passed & is_signal].sum()), background["yield"]
    eff_b = b / background_all["yield"]
    n_bkg_pass = int((passed & ~is_signal).sum())
    result = {
        "signal_efficiency": s / float(yields[is_signal].sum()),
        "background_efficiency": eff_b,
        "background_rejection": rejection(eff_b),
        "n_signal_pass": int((passed & is_signal).sum()),
        "n_background_pass": n_bkg_pass,
        "n_signal": prediction.n_signal,
        "n_background": prediction.n_background,
        "n_background_effective": background_all["effective_events"],
        "S": s,
        "B": b,
        "B_stat_uncertainty": background["stat_uncertainty"],
        "background_effective_events": background["effective_events"],
        "significance": s / np.sqrt(b) if b > 0 else None,
        "low_statistics": not bool(enough_events(background["effective_events"], min_background_events)),
    }
    # unlike the score scan, a fixed cut is always reported; flag when B rests on too few events
    if n_bkg_pass == 0:
        result["note"] = (
            f"no background MC event passes: rejection > {background_all['effective_events']:.0f} "
            "(effective background MC events), S/sqrt(B) undefined"
        )
    elif result["low_statistics"]:
        result["note"] = (
            f"B rests on {background['effective_events']:.1f} effective background MC events "
            f"(< {min_background_events}): B and S/sqrt(B) are unreliable"
        )
    return result


# --- expected limit of a selection -----------------------------------------------------------------------------


def cut_based_histograms(prediction, selection, luminosity_fb, mjj_bins=1, min_background_events=MIN_BACKGROUND_EVENTS):
    """Yields of the selected events in ``mjj_bins`` equal bins of m_jj across the selection's window
    (1: a single count), merged from the high end until every bin has background N_eff >=
    min_background_events (see limits.binned_yields)."""
    mjj = dijet_mass(prediction.arrays)
    passed = select(prediction.arrays, selection, mjj)
    edges = np.linspace(selection.mjj_window[0] * selection.mH, selection.mjj_window[1] * selection.mH, mjj_bins + 1)
    bin_index = np.clip(np.searchsorted(edges[1:-1], mjj, side="right"), 0, mjj_bins - 1)
    bin_index = np.where(passed, bin_index, -1)
    yields = yield_weights(prediction, luminosity_fb)
    return binned_yields(bin_index, edges, prediction.is_signal, yields, min_background_events, event_index(prediction),
                         btag_variations(prediction))


def cut_based_limit(prediction, selection, luminosity_fb, mjj_bins=1, cl=DEFAULT_CL,
                    min_background_events=MIN_BACKGROUND_EVENTS, mc_stat=True):
    """Expected limit on mu and on sigma x BR (fb) from the events passing ``selection`` (limits.py)."""
    histograms = cut_based_histograms(prediction, selection, luminosity_fb, mjj_bins, min_background_events)
    return limit_from_histograms(histograms, signal_cross_section(prediction), cl, mc_stat)


# --- optimisation per mass point -------------------------------------------------------------------------------


def _steps(first, last, step):
    return tuple(float(v) for v in np.round(np.arange(first, last + step / 2, step), 6))


@dataclass(frozen=True)
class OptimisationGrid:
    """The requirements :func:`optimise` scans (every combination: 9 x 7 x 3 x 6 x 6 = 6804 by default)."""

    sdmass_low: tuple = _steps(70.0, 110.0, 5.0)  # GeV, lower edge of the soft-drop mass window
    sdmass_high: tuple = _steps(130.0, 160.0, 5.0)  # GeV, upper edge
    min_btags: tuple = (2, 3, 4)
    mjj_low: tuple = _steps(0.70, 0.95, 0.05)  # fractions of mH
    mjj_high: tuple = _steps(1.05, 1.30, 0.05)

    def cuts(self):
        """The five lists of cut values, in the order of the axes of :func:`scan`'s arrays."""
        return (self.sdmass_low, self.sdmass_high, self.min_btags, self.mjj_low, self.mjj_high)

    def size(self):
        return int(np.prod([len(values) for values in self.cuts()]))


def _lower_cut_index(values, cuts):
    """Event passes ``value >= cuts[a]`` for a < index (cuts ascending)."""
    return np.searchsorted(np.asarray(cuts, dtype=np.float64), values, side="right")


def _upper_cut_index(values, cuts):
    """Event passes ``value <= cuts[b]`` for b >= index (cuts ascending)."""
    return np.searchsorted(np.asarray(cuts, dtype=np.float64), values, side="left")


def _passing_sums(indices, lower, weights, shape):
    """Sum of ``weights`` of the events passing every grid point.

    ``indices``: per requirement, each event's index from _lower_cut_index / _upper_cut_index;
    ``lower``: per requirement, whether it is a lower edge. An event histogrammed by its indices
    passes a lower-edge cut a when its index is > a, an upper-edge cut b when its index is <= b,
    so the passing sums are cumulative sums of the histogram, from above or from below.
    """
    cells = tuple(n + 1 for n in shape)
    histogram = np.bincount(np.ravel_multi_index(indices, cells), weights=weights, minlength=int(np.prod(cells)))
    histogram = histogram.reshape(cells)
    for axis, is_lower in enumerate(lower):
        if is_lower:  # passes a: index in a+1..n
            histogram = np.flip(np.cumsum(np.flip(histogram, axis), axis), axis)
            histogram = np.take(histogram, np.arange(1, cells[axis]), axis=axis)
        else:  # passes b: index in 0..b
            histogram = np.take(np.cumsum(histogram, axis), np.arange(cells[axis] - 1), axis=axis)
    return histogram


def _per_event_sumw2_rows(indices, nbtag, background_yield, event, min_btags):
    """Rows (indices, weights) whose passing sums are the background sumw2 at every grid point with the
    copies of one event summed before squaring. The copies (truth tagging) share the event's
    kinematics and differ in their b-tags, so at a requirement ">= k tags" event e contributes
    Y_e(k)^2, Y_e(k) = the yield of its copies with >= k tags. Each event gets one row per k on the
    b-tag axis, weight Y_e(k)^2 - Y_e(k+1)^2: the cumulative sum from above over that axis gives back
    Y_e(k)^2 at requirement k."""
    first, inverse = np.unique(event, return_index=True, return_inverse=True)[1:]
    inverse = inverse.ravel()
    passing = np.stack([np.bincount(inverse, weights=np.where(nbtag >= k, background_yield, 0.0), minlength=len(first))
                        for k in min_btags])  # (requirements, events): Y_e(k)
    squared = np.square(passing)
    steps = squared - np.r_[squared[1:], np.zeros((1, len(first)))]
    n_req = len(min_btags)
    rows = tuple(np.tile(axis[first], n_req) for axis in indices)
    rows = rows[:2] + (np.repeat(np.arange(1, n_req + 1), len(first)),) + rows[3:]
    return rows, steps.ravel()


def scan(prediction, luminosity_fb, mH, grid=OptimisationGrid()):
    """S, B and background sumw2 at every grid point: arrays of shape
    (sdmass_low, sdmass_high, min_btags, mjj_low, mjj_high). sumw2 sums the copies of one generated
    event (truth tagging) before squaring: see yields.py."""
    arrays = prediction.arrays
    sdmass = np.stack([np.asarray(arrays[f"{jet}_sdmass"], dtype=np.float64) for jet in ("fj1", "fj2")])
    nbtag = tag_count(arrays)
    mjj = dijet_mass(arrays)
    indices = (
        _lower_cut_index(sdmass.min(axis=0), grid.sdmass_low),  # both jets >= lo
        _upper_cut_index(sdmass.max(axis=0), grid.sdmass_high),  # both jets <= hi
        _lower_cut_index(nbtag, grid.min_btags),
        _lower_cut_index(mjj, [lo * mH for lo in grid.mjj_low]),  # same products as select()
        _upper_cut_index(mjj, [hi * mH for hi in grid.mjj_high]),
    )
    lower = (True, False, True, True, False)
    shape = tuple(len(values) for values in grid.cuts())
    yields = yield_weights(prediction, luminosity_fb)
    sig = prediction.is_signal
    background = tuple(axis[~sig] for axis in indices)
    rows, steps = _per_event_sumw2_rows(background, nbtag[~sig], yields[~sig], event_index(prediction)[~sig],
                                        grid.min_btags)
    return {
        "S": _passing_sums(indices, lower, np.where(sig, yields, 0.0), shape),
        "B": _passing_sums(indices, lower, np.where(sig, 0.0, yields), shape),
        "B_sumw2": _passing_sums(rows, lower, steps, shape),
    }


def best_selection(prediction, luminosity_fb, mH, grid=OptimisationGrid(), min_background_events=MIN_BACKGROUND_EVENTS):
    """The grid point with the best expected S/sqrt(B) among those whose background has N_eff >=
    min_background_events: {mH, working_points, qualifying, min_background_events, selection
    (CutBasedSelection, or None with a note)}."""
    sums = scan(prediction, luminosity_fb, mH, grid)
    n_eff = effective_events(sums["B"], sums["B_sumw2"])
    qualifies = enough_events(n_eff, min_background_events) & (sums["B"] > 0)
    result = {"mH": float(mH), "working_points": grid.size(), "qualifying": int(qualifies.sum()),
              "min_background_events": min_background_events}
    if not qualifies.any():
        # how far from the floor: the most any working point keeps says how many more events would do
        most = float(np.max(np.where(sums["B"] > 0, n_eff, 0.0)))
        return {**result, "selection": None, "most_background_events": most,
                "note": f"no working point keeps >= {min_background_events} effective background MC events "
                        f"(the most any keeps: {most:.3g})"}
    z = np.where(qualifies, sums["S"] / np.sqrt(np.where(qualifies, sums["B"], 1.0)), -np.inf)
    a, b, k, lo, hi = np.unravel_index(int(np.argmax(z)), z.shape)
    selection = CutBasedSelection(
        mH=float(mH),
        sdmass_window=(grid.sdmass_low[a], grid.sdmass_high[b]),
        min_btags=int(grid.min_btags[k]),
        mjj_window=(grid.mjj_low[lo], grid.mjj_high[hi]),
    )
    return {**result, "selection": selection}


def optimise(prediction, luminosity_fb, mH, grid=OptimisationGrid(), min_background_events=MIN_BACKGROUND_EVENTS,
             mjj_bins=1, cl=DEFAULT_CL):
    """``best_selection`` and, on the same sample, its yields and expected limit (``mjj_bins`` bins
    of m_jj, 1 = a count).

    Returns {selection (CutBasedSelection or None), definition, the keys of :func:`evaluate` (S, B,
    B_stat_uncertainty, background_effective_events, efficiencies, significance, ...), limit
    (limits.limit_from_histograms), working_points, qualifying}. The choice is made on the same
    sample as the yields: with few MC events the best S/sqrt(B) is biased upwards.
    """
    result = best_selection(prediction, luminosity_fb, mH, grid, min_background_events)
    selection = result["selection"]
    if selection is None:
        return {**result, "limit": None}
    return {
        **result,
        "definition": selection.describe(),
        **evaluate(prediction, selection, luminosity_fb, min_background_events),
        "limit": cut_based_limit(prediction, selection, luminosity_fb, mjj_bins, cl, min_background_events),
    }
