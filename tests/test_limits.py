"""Weighted yields, MC statistics, expected limits (pyhf) and the per-mass-point cut-based optimiser.

Everything runs on in-memory toy samples (``Prediction`` built from numpy arrays, no ROOT file, no
generation). References are computed independently of the code under test: closed-form asymptotic
formulae, duplicated events, counts by hand.
"""

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from multiscale.evaluation.cutbased import (
    CutBasedSelection,
    OptimisationGrid,
    cut_based_limit,
    evaluate,
    optimise,
    scan,
    select,
)
from multiscale.evaluation.io import Prediction
from multiscale.evaluation.limits import (
    classifier_limit,
    expected_limit,
    expected_significance,
    merge_from_top,
    score_histograms,
)
from multiscale.evaluation.metrics import auc, best_significance, roc, working_point
from multiscale.evaluation.yields import background_statistics, expected_yields, mc_statistics, yield_weights

QCD, TTBAR, HH4B = 0, 1, 2


def toy(process, score=None, weight=None, xsec_fb=None, acceptance=None, mH=1000.0, mjj=None, **observers):
    """A Prediction like io.read_prediction returns. ``mjj``: put the fat jets back to back at eta 0
    with pt chosen so that the di-jet mass is mjj (each jet: E = mjj / 2, mass 50 GeV)."""
    process = np.asarray(process, dtype=np.int32)
    n = len(process)
    is_signal = process == HH4B
    arrays = {
        "is_signal": is_signal,
        "score_is_signal": np.full(n, 0.5) if score is None else np.asarray(score, dtype=np.float64),
        "event_id": np.arange(n),
        "process": process,
        "weight": np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64),
        "xsec_fb": np.ones(n) if xsec_fb is None else np.asarray(xsec_fb, dtype=np.float64),
        "acceptance": np.ones(n) if acceptance is None else np.asarray(acceptance, dtype=np.float64),
        "mH": np.where(is_signal, mH, 0.0),
    }
    jet_mass = 50.0
    pt = np.full(n, 400.0) if mjj is None else np.sqrt((np.asarray(mjj) / 2) ** 2 - jet_mass**2)
    for jet, phi in (("fj1", 0.0), ("fj2", np.pi)):
        arrays.update({f"{jet}_pt": pt, f"{jet}_eta": np.zeros(n), f"{jet}_phi": np.full(n, phi),
                       f"{jet}_mass": np.full(n, jet_mass), f"{jet}_sdmass": np.full(n, 30.0),
                       f"{jet}_nbtag": np.zeros(n, dtype=np.int32)})
    arrays.update({name: np.asarray(values) for name, values in observers.items()})
    return Prediction("toy", arrays)


# --- expected limits and significance: single Poisson bin against closed-form asymptotics ----------------------


def asymptotic_cls_limit(s, b, n_sigma, cl=0.95):
    """Expected CLs upper limit on mu for one Poisson bin, background-only Asimov data, no nuisance.

    On Asimov data n = b the profile likelihood ratio gives q_mu,A = 2 (mu s - b ln(1 + mu s / b)).
    The expected CLs at the n_sigma quantile of the background-only distribution (Cowan et al.,
    arXiv:1007.1727, the convention pyhf follows) is (1 - Phi(sqrt(q_mu,A) - n)) / Phi(n); the limit
    solves CLs = 1 - CL. n = +2 ... -2 are the +2 sigma ... -2 sigma band edges.
    """

    def cls_minus_alpha(mu):
        sqrt_q = np.sqrt(2 * (mu * s - b * np.log1p(mu * s / b)))
        return norm.sf(sqrt_q - n_sigma) / norm.cdf(n_sigma) - (1 - cl)

    return brentq(cls_minus_alpha, 1e-6, 1e3, xtol=1e-12)


def test_expected_limit_single_bin_matches_asymptotic_formula():
    s, b = 10.0, 100.0
    limit = expected_limit([s], [b])
    # median: sqrt(q_mu,A) = 1.96 -> mu s ~ 1.96 sqrt(b) (1 + O(mu s / b)): mu_up = 2.090
    assert limit["mu_up"] == pytest.approx(asymptotic_cls_limit(s, b, 0.0), rel=1e-3)
    assert limit["mu_up"] == pytest.approx(1.96 * np.sqrt(b) / s, rel=0.1)  # the Gaussian rule of thumb
    for key, n_sigma in (("-2sigma", -2), ("-1sigma", -1), ("+1sigma", 1), ("+2sigma", 2)):
        assert limit["band"][key] == pytest.approx(asymptotic_cls_limit(s, b, n_sigma), rel=1e-3), key
    band = [limit["band"][k] for k in ("-2sigma", "-1sigma", "median", "+1sigma", "+2sigma")]
    assert band == sorted(band)
    # no MC statistical uncertainty: sumw2 = 0 is the same model as no staterror at all
    assert expected_limit([s], [b], [0.0])["mu_up"] == pytest.approx(limit["mu_up"], rel=1e-6)
    # the limit scales as 1/s, also far outside the initial POI range [0, 10]
    assert expected_limit([s / 1000], [b])["mu_up"] == pytest.approx(1000 * limit["mu_up"], rel=1e-3)


def test_mc_statistical_uncertainty_weakens_the_limit():
    s, b = 10.0, 100.0
    without = expected_limit([s], [b])["mu_up"]
    with_10_percent = expected_limit([s], [b], [(0.1 * b) ** 2])["mu_up"]
    # a 10 % background uncertainty (10 events) is as large as sqrt(b): the limit grows by ~sqrt(2)
    assert without * 1.2 < with_10_percent < without * 1.6


def test_expected_significance_single_bin_matches_asimov_formula():
    s, b = 10.0, 100.0
    # median discovery significance on Asimov data: Z0 = sqrt(2 ((s + b) ln(1 + s / b) - s)) = 0.984;
    # S/sqrt(B) = 1 is its large-b limit
    reference = np.sqrt(2 * ((s + b) * np.log1p(s / b) - s))
    assert expected_significance([s], [b]) == pytest.approx(reference, rel=1e-4)
    assert reference == pytest.approx(s / np.sqrt(b), rel=0.02)


# --- weighted yields -------------------------------------------------------------------------------------------


def test_weight_two_equals_two_copies():
    """A weighted sample and the same sample with each weight-2 event written twice (weight 1) give the
    same yields, efficiencies, ROC, AUC and best cut; only the MC statistics differ."""
    rng = np.random.default_rng(11)
    n_sig, n_bkg = 60, 80
    process = np.r_[np.full(n_sig, HH4B), np.full(n_bkg // 2, QCD), np.full(n_bkg // 2, TTBAR)]
    score = np.where(process == HH4B, rng.uniform(0.3, 1.0, len(process)), rng.uniform(0.0, 0.7, len(process)))
    weight = rng.choice([1.0, 2.0], len(process))
    xsec = np.select([process == HH4B, process == QCD], [2.0, 500.0], 40.0)
    weighted = toy(process, score, weight, xsec, acceptance=np.full(len(process), 0.5))
    copies = np.repeat(np.arange(len(process)), weight.astype(int))
    duplicated = toy(process[copies], score[copies], np.ones(len(copies)), xsec[copies], np.full(len(copies), 0.5))

    lumi = 300.0
    cut = score >= 0.5
    assert expected_yields(weighted, lumi) == pytest.approx(expected_yields(duplicated, lumi))
    assert expected_yields(weighted, lumi, cut) == pytest.approx(expected_yields(duplicated, lumi, cut[copies]))
    # totals: L * xsec * acceptance per process, whatever the weights: S = 300 * 1, B = 300 * (250 + 20)
    assert expected_yields(weighted, lumi) == pytest.approx((300.0, 300.0 * 270.0))

    y_w, y_d = yield_weights(weighted, lumi), yield_weights(duplicated, lumi)
    auc_w, auc_d = auc(weighted.is_signal, weighted.score, y_w), auc(duplicated.is_signal, duplicated.score, y_d)
    assert auc_w == pytest.approx(auc_d)
    roc_w, roc_d = roc(weighted.is_signal, weighted.score, y_w), roc(duplicated.is_signal, duplicated.score, y_d)
    np.testing.assert_allclose(roc_w.signal_efficiency, roc_d.signal_efficiency)
    np.testing.assert_allclose(roc_w.background_efficiency, roc_d.background_efficiency)
    for eff in (0.3, 0.5, 0.8):
        assert working_point(roc_w, eff)["rejection"] == pytest.approx(working_point(roc_d, eff)["rejection"])
    best_w = best_significance(weighted.is_signal, weighted.score, y_w, min_background_events=1)
    best_d = best_significance(duplicated.is_signal, duplicated.score, y_d, min_background_events=1)
    for key in ("significance", "threshold", "S", "B", "signal_efficiency", "background_efficiency"):
        assert best_w[key] == pytest.approx(best_d[key]), key
    # the duplicated copies count as independent MC events, the weight-2 events do not
    n_eff_w = background_statistics(weighted, lumi)["effective_events"]
    assert background_statistics(duplicated, lumi)["effective_events"] > n_eff_w


def test_uniform_weights_reduce_to_unweighted_yields():
    # L = 10: QCD 4 events, xsec*acc = 100 * 0.3 = 30 fb, uniform weight 0.37 -> each L * 30 / 4 = 75;
    # signal 2 events, 3 * 0.3 = 0.9 fb, weight 5 -> each L * 0.9 / 2 = 4.5
    process = [QCD] * 4 + [HH4B] * 2
    prediction = toy(process, weight=[0.37] * 4 + [5.0] * 2, xsec_fb=[100] * 4 + [3] * 2, acceptance=[0.3] * 6)
    assert yield_weights(prediction, 10.0) == pytest.approx([75.0] * 4 + [4.5] * 2)


def test_effective_events_and_stat_uncertainty_by_hand():
    # yields 1, 1, 2: sum 4, sum of squares 6 -> uncertainty sqrt(6), N_eff = 16 / 6
    stats = mc_statistics([1.0, 1.0, 2.0])
    assert stats == pytest.approx({"yield": 4.0, "stat_uncertainty": np.sqrt(6.0), "effective_events": 16 / 6})
    # n equal weights: N_eff = n; nothing selected: 0
    assert mc_statistics(np.full(7, 0.3))["effective_events"] == pytest.approx(7.0)
    assert mc_statistics([])["effective_events"] == 0.0
    # one process, weights 1, 1, 2 (xsec = acc = 1, L = 4): yields 1, 1, 2, same N_eff as from the weights
    prediction = toy([QCD, QCD, QCD, HH4B], weight=[1.0, 1.0, 2.0, 1.0])
    assert background_statistics(prediction, 4.0) == pytest.approx(stats)


def test_working_points_below_ten_effective_events_are_flagged():
    # 20 background events: one heavy (weight 100) at the highest background score, 19 light ones
    process = [HH4B] * 10 + [QCD] * 20
    score = np.r_[np.linspace(0.9, 0.99, 10), 0.8, np.linspace(0.0, 0.5, 19)]
    weight = np.r_[np.ones(10), 100.0, np.ones(19)]
    prediction = toy(process, score, weight)
    y = yield_weights(prediction, 1.0)
    curve = roc(prediction.is_signal, prediction.score, y)
    # eps_S = 0.5 keeps only signal: no background, flagged; eps_S = 1 with every background event
    # kept would be N_eff = 119^2 / (100^2 + 19) = 1.41 despite 20 MC events: flagged too
    assert working_point(curve, 0.5)["low_statistics"]
    assert working_point(curve, 0.5)["background_effective_events"] == 0.0
    best = best_significance(prediction.is_signal, prediction.score, y)
    assert best["significance"] is None and "effective" in best["note"]
    assert mc_statistics(y[~prediction.is_signal])["effective_events"] == pytest.approx(119**2 / (100**2 + 19))


# --- binning rule ----------------------------------------------------------------------------------------------


def test_merge_from_top_by_hand():
    ones = np.ones(5)
    # unit weights, counts per bin (low -> high) 50, 3, 4, 5, 20: from the top 20 qualifies alone,
    # 5 + 4 + 3 = 12 together, 50 alone -> bins starting at 0, 1, 4
    counts = np.array([50.0, 3.0, 4.0, 5.0, 20.0])
    assert merge_from_top(counts, counts * ones, 10) == [0, 1, 4]
    # a remainder at the low end joins the lowest merged bin: 3 | 20 + 4 -> one bin
    counts = np.array([3.0, 20.0, 4.0])
    assert merge_from_top(counts, counts, 10) == [0]
    # nothing qualifies: one bin
    assert merge_from_top(np.array([2.0, 2.0]), np.array([2.0, 2.0]), 10) == [0]


def weighted_toy(n_sig=4000, n_bkg=3000, seed=5, background_xsec_fb=1e5):
    """Signal peaking at high score, QCD at low score, with broad Pythia-like background weights
    (log-normal, N_eff ~ n_bkg / e)."""
    rng = np.random.default_rng(seed)
    process = np.r_[np.full(n_sig, HH4B), np.full(n_bkg, QCD)]
    score = np.r_[rng.beta(4, 2, n_sig), rng.beta(2, 4, n_bkg)]
    weight = np.r_[np.ones(n_sig), rng.lognormal(0.0, 1.0, n_bkg)]
    xsec = np.where(process == HH4B, 0.5, background_xsec_fb)
    return toy(process, score, weight, xsec)


def test_score_bins_keep_ten_effective_background_events():
    prediction = weighted_toy()
    lumi = 3000.0
    hist = score_histograms(prediction, lumi, n_bins=20)
    assert not hist["low_statistics"]
    assert np.all(hist["background_effective_events"] >= 10) and np.all(hist["background"] > 0)
    assert 1 < len(hist["background"]) < 20  # the high-score bins had to be merged, the others not all
    assert np.all(np.diff(hist["edges"]) > 0)
    # merging loses nothing
    s, b = expected_yields(prediction, lumi)
    assert hist["signal"].sum() == pytest.approx(s) and hist["background"].sum() == pytest.approx(b)
    # check the N_eff of each bin from the events themselves, with the returned edges
    y, score, bkg = yield_weights(prediction, lumi), prediction.score, ~prediction.is_signal
    edges = hist["edges"]
    for k in range(len(edges) - 1):
        top = score <= edges[k + 1] if k == len(edges) - 2 else score < edges[k + 1]
        in_bin = bkg & (score >= edges[k]) & top
        assert mc_statistics(y[in_bin])["effective_events"] == pytest.approx(hist["background_effective_events"][k])


def test_score_bins_have_equal_signal_when_background_is_plentiful():
    rng = np.random.default_rng(6)
    process = np.r_[np.full(5000, HH4B), np.full(5000, QCD)]
    prediction = toy(process, rng.uniform(size=10000))  # flat background: every bin has ~1000 events
    hist = score_histograms(prediction, 1.0, n_bins=5)
    assert len(hist["signal"]) == 5
    np.testing.assert_allclose(hist["signal"] / hist["signal"].sum(), 0.2, atol=1e-3)


def test_classifier_limit_reports_mu_and_cross_section():
    # B = 3000 fb^-1 x 10 fb = 3e4 events: pyhf's scipy fits are reliable up to ~1e5 events per bin
    prediction = weighted_toy(n_sig=1000, n_bkg=1500, background_xsec_fb=10.0)
    result = classifier_limit(prediction, 3000.0, n_bins=5, optimizer="scipy")
    assert result["mu_up"] > 0 and result["signal_xsec_fb"] == 0.5
    assert result["xsec_up_fb"] == pytest.approx(result["mu_up"] * 0.5)
    assert result["xsec_band_fb"]["+1sigma"] == pytest.approx(result["band"]["+1sigma"] * 0.5)
    # the binned score does better than one bin holding everything
    one_bin = expected_limit([result["S"]], [result["B"]], [result["histograms"]["background_sumw2"].sum()])
    assert result["mu_up"] < one_bin["mu_up"]


# --- cut-based optimiser ---------------------------------------------------------------------------------------


def planted_window_toy(mH=1200.0, n_sig=2000, n_bkg=300_000, seed=7):
    """Signal uniform inside 110 < m_SD < 130 GeV (both jets), 4 b-tags, 0.905 < m_jj / mH < 1.045;
    weighted background spread far around it. The best grid point keeps all the signal with the least
    background: m_SD in [110, 130], >= 4 b-tags, m_jj in [0.90, 1.05] x mH."""
    rng = np.random.default_rng(seed)
    process = np.r_[np.full(n_sig, HH4B), np.full(n_bkg, QCD)]
    sig = process == HH4B
    n = len(process)
    sdmass = {jet: np.where(sig, rng.uniform(110.5, 129.5, n), rng.uniform(60.0, 170.0, n)) for jet in ("fj1", "fj2")}
    nbtag = {jet: np.where(sig, 2, rng.integers(0, 3, n)).astype(np.int32) for jet in ("fj1", "fj2")}
    ratio = np.where(sig, rng.uniform(0.905, 1.045, n), rng.uniform(0.65, 1.35, n))
    weight = np.where(sig, 1.0, rng.uniform(0.5, 2.0, n))
    xsec = np.where(sig, 1.0, 1e4)
    return toy(process, weight=weight, xsec_fb=xsec, mH=mH, mjj=ratio * mH,
               fj1_sdmass=sdmass["fj1"], fj2_sdmass=sdmass["fj2"], fj1_nbtag=nbtag["fj1"], fj2_nbtag=nbtag["fj2"])


def test_optimiser_finds_the_planted_window():
    mH, lumi = 1200.0, 3000.0
    prediction = planted_window_toy(mH)
    result = optimise(prediction, lumi, mH)
    assert result["selection"] == CutBasedSelection(mH=mH, sdmass_window=(110.0, 130.0), min_btags=4,
                                                    mjj_window=(0.9, 1.05))
    assert result["working_points"] == 9 * 7 * 3 * 6 * 6
    # all the signal is kept; the reported numbers are those of the chosen selection
    assert result["signal_efficiency"] == pytest.approx(1.0)
    assert result["background_effective_events"] >= 10
    passed = select(prediction.arrays, result["selection"])
    assert (result["S"], result["B"]) == pytest.approx(expected_yields(prediction, lumi, passed))
    assert result["significance"] == pytest.approx(result["S"] / np.sqrt(result["B"]))
    # its expected limit is the one-bin count of that selection
    limit = result["limit"]
    stats = background_statistics(prediction, lumi, passed)
    reference = expected_limit([result["S"]], [result["B"]], [stats["stat_uncertainty"] ** 2])
    assert limit["mu_up"] == pytest.approx(reference["mu_up"], rel=1e-6)
    assert limit["xsec_up_fb"] == pytest.approx(limit["mu_up"] * 1.0)


def test_scan_agrees_with_select_at_every_sampled_grid_point():
    mH, lumi = 1200.0, 100.0
    prediction = planted_window_toy(mH, n_sig=500, n_bkg=20_000, seed=8)
    grid = OptimisationGrid()
    sums = scan(prediction, lumi, mH, grid)
    y, sig = yield_weights(prediction, lumi), prediction.is_signal
    rng = np.random.default_rng(9)
    for _ in range(15):
        a, b, k, lo, hi = (rng.integers(n) for n in sums["S"].shape)
        selection = CutBasedSelection(mH, (grid.sdmass_low[a], grid.sdmass_high[b]), grid.min_btags[k],
                                      (grid.mjj_low[lo], grid.mjj_high[hi]))
        passed = select(prediction.arrays, selection)
        assert sums["S"][a, b, k, lo, hi] == pytest.approx(y[passed & sig].sum())
        assert sums["B"][a, b, k, lo, hi] == pytest.approx(y[passed & ~sig].sum())
        assert sums["B_sumw2"][a, b, k, lo, hi] == pytest.approx(np.square(y[passed & ~sig]).sum())


def test_optimiser_ignores_points_below_the_effective_event_minimum():
    mH = 1200.0
    prediction = planted_window_toy(mH, n_sig=200, n_bkg=5_000, seed=10)
    result = optimise(prediction, 3000.0, mH, min_background_events=1e9)
    assert result["selection"] is None and result["qualifying"] == 0 and "effective" in result["note"]
    # with the usual minimum, the chosen point has it and the cut-based evaluation agrees
    result = optimise(prediction, 3000.0, mH)
    assert result["background_effective_events"] >= 10 and not result["low_statistics"]
    assert result["B"] == pytest.approx(evaluate(prediction, result["selection"], 3000.0)["B"])
    two_bins = cut_based_limit(prediction, result["selection"], 3000.0, mjj_bins=2)
    assert np.all(two_bins["histograms"]["background_effective_events"] >= 10)
