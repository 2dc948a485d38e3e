"""Weighted yields, MC statistics, expected limits (pyhf) and the per-mass-point cut-based optimiser.

Everything runs on in-memory toy samples (``Prediction`` built from numpy arrays, no ROOT file, no
generation). References are computed independently of the code under test: closed-form asymptotic
formulae, duplicated events, counts by hand.
"""

import numpy as np
import pytest
import pyhf
from scipy.optimize import brentq, minimize_scalar
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
from multiscale.evaluation.likelihood import BinnedModel, ProfileError, Systematic, pyhf_model
from multiscale.evaluation.limits import (
    choose_score_binning,
    classifier_limit,
    expected_limit,
    expected_significance,
    histograms_on_binning,
    merge_from_top,
    score_histograms,
)
from multiscale.evaluation.metrics import (
    auc,
    best_significance,
    choose_score_cut,
    roc,
    significance_at,
    validated_significance,
    working_point,
)
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


# --- expected limits and significance against closed forms, at every yield this project meets -------------------


def asymptotic_cls_limit(s, b, n_sigma, cl=0.95):
    """Expected CLs upper limit on mu for Poisson bins without nuisance parameters, on background-only
    Asimov data, from the closed form of the test statistic (written here, independently of the code).

    On Asimov data n = b the profile likelihood ratio gives q_mu,A = 2 sum (mu s - b ln(1 + mu s / b)).
    The expected CLs at the n_sigma quantile of the background-only distribution (Cowan et al.,
    arXiv:1007.1727, the convention pyhf follows) is (1 - Phi(sqrt(q_mu,A) - n)) / Phi(n); the limit
    solves CLs = 1 - CL. n = +2 ... -2 are the +2 sigma ... -2 sigma band edges.
    """
    s, b = np.atleast_1d(np.asarray(s, dtype=float)), np.atleast_1d(np.asarray(b, dtype=float))

    def cls_minus_alpha(log_mu):
        mu = np.exp(log_mu)
        sqrt_q = np.sqrt(2 * np.sum(mu * s - b * np.log1p(mu * s / b)))
        return norm.sf(sqrt_q - n_sigma) / norm.cdf(n_sigma) - (1 - cl)

    gaussian = 1.96 / np.sqrt(np.sum(s**2 / b))
    return float(np.exp(brentq(cls_minus_alpha, np.log(gaussian) - 10, np.log(gaussian) + 10, xtol=1e-13)))


BAND = (("-2sigma", -2), ("-1sigma", -1), ("median", 0), ("+1sigma", 1), ("+2sigma", 2))


@pytest.mark.parametrize("b", [0.1, 1.0, 10.0, 100.0, 1e4, 1e6, 3.88e7, 1e8, 1e10])
def test_expected_limit_single_bin_matches_the_closed_form_at_every_yield(b):
    # the signal is chosen so that the limit is O(1) (the regime of the study), and 1000x smaller
    for s in (3.0 * np.sqrt(b) + 1.0, (3.0 * np.sqrt(b) + 1.0) / 1000):
        limit = expected_limit([s], [b])
        for key, n_sigma in BAND:
            assert limit["band"][key] == pytest.approx(asymptotic_cls_limit(s, b, n_sigma), rel=1e-6), (s, b, key)
    # no MC statistical uncertainty: sumw2 = 0 is the same model as no staterror at all
    assert expected_limit([s], [b], [0.0])["mu_up"] == pytest.approx(limit["mu_up"], rel=1e-9)


def test_expected_limit_of_the_issue_case_is_the_gaussian_one():
    # issue 23: S = 9974, B = 3.88e7 gave 1.749 (pyhf's fit stopping early) against 1.96 sqrt(B) / S = 1.224
    for s, b in ((9974.0, 3.88e7), (9973.8, 3.876e7)):
        assert expected_limit([s], [b])["mu_up"] == pytest.approx(1.96 * np.sqrt(b) / s, rel=1e-3)


@pytest.mark.parametrize("scale", [1e-1, 1.0, 1e3, 1e6, 1e10])
def test_expected_limit_several_bins_matches_the_closed_form(scale):
    # four score bins as in the study: the background falls steeply towards the signal-like end
    s = np.array([1.0, 2.0, 4.0, 8.0]) * np.sqrt(scale) + 0.5
    b = np.array([100.0, 10.0, 1.0, 0.2]) * scale
    limit = expected_limit(s, b)
    for key, n_sigma in BAND:
        assert limit["band"][key] == pytest.approx(asymptotic_cls_limit(s, b, n_sigma), rel=1e-6), key
    # more bins beat their sum in one bin
    assert limit["mu_up"] < expected_limit([s.sum()], [b.sum()])["mu_up"]


def test_expected_limit_moves_smoothly_when_the_inputs_move_in_their_last_digits():
    # the issue's failure: digits that should not matter switched the answer between two values 1.43x apart
    rng = np.random.default_rng(23)
    for s0, b0, w0 in ((9974.0, 3.88e7, None), (9974.0, 3.88e7, 3.88e7 * 1e3), (2.0e5, 1e10, 1e10 * 1e4)):
        reference = expected_limit([s0], [b0], None if w0 is None else [w0])["mu_up"]
        for relative in rng.uniform(-1e-6, 1e-6, size=(12, 3)):
            s, b = s0 * (1 + relative[0]), b0 * (1 + relative[1])
            sumw2 = None if w0 is None else [w0 * (1 + relative[2])]
            moved = expected_limit([s], [b], sumw2)["mu_up"]
            # mu_up ~ sqrt(b (1 + sumw2 / b)) / s: it cannot move by more than ~ the perturbation
            assert abs(moved / reference - 1) < 4e-6, (s, b, sumw2, moved, reference)


def test_expected_significance_matches_the_asimov_formula_at_every_yield():
    for s, b in ((10.0, 100.0), (1.0, 0.1), (9974.0, 3.88e7), (3e5, 1e10)):
        # median discovery significance on Asimov data: Z0 = sqrt(2 ((s + b) ln(1 + s / b) - s))
        reference = np.sqrt(2 * ((s + b) * np.log1p(s / b) - s))
        assert expected_significance([s], [b]) == pytest.approx(reference, rel=1e-6), (s, b)


def profile_scan_q(mu, s, b, sumw2):
    """q~_mu,A with a staterror parameter per bin, profiled by a numerical scan over gamma: the
    textbook Poisson and Gaussian log-likelihoods minimised by scipy (independent of the code's
    closed form). The Poisson term is written as its deviance n ln(n / lambda) + lambda - n, which is
    the same likelihood ratio without the n ln n - n constants that swamp float64 at large n."""
    total = 0.0
    for s_k, b_k, w_k in zip(s, b, sumw2):
        sigma = np.sqrt(w_k) / b_k

        def nll(gamma, mu_value):
            lam = mu_value * s_k + gamma * b_k
            return b_k * np.log(b_k / lam) + lam - b_k + 0.5 * ((gamma - 1) / sigma) ** 2

        best = minimize_scalar(lambda g: nll(g, mu), bounds=(1e-12, 1.0), method="bounded",
                               options={"xatol": 1e-13})
        total += 2 * best.fun  # the unconditional fit on Asimov data is (0, gamma = 1), where nll = 0
    return total


def test_expected_limit_with_mc_statistics_matches_a_profile_likelihood_scan():
    for s, b, sumw2 in (([3.0, 8.0, 12.0], [50.0, 20.0, 6.0], [25.0, 16.0, 9.0]),
                        ([2e4, 3e4], [1e9, 2e8], [1e9 * 1e3, 2e8 * 4e3])):
        limit = expected_limit(s, b, sumw2)
        for key, n_sigma in BAND:
            target = n_sigma + norm.isf(0.05 * norm.cdf(n_sigma))
            scanned = brentq(lambda mu: np.sqrt(profile_scan_q(mu, s, b, sumw2)) - target, 1e-3, 1e3, xtol=1e-12)
            assert limit["band"][key] == pytest.approx(scanned, rel=1e-5), (b, key)
        # the MC statistics weaken the limit
        assert limit["mu_up"] > expected_limit(s, b)["mu_up"]


def test_mc_statistical_uncertainty_weakens_the_limit():
    s, b = 10.0, 100.0
    without = expected_limit([s], [b])["mu_up"]
    with_10_percent = expected_limit([s], [b], [(0.1 * b) ** 2])["mu_up"]
    # a 10 % background uncertainty (10 events) is as large as sqrt(b): the limit grows by ~sqrt(2)
    assert without * 1.2 < with_10_percent < without * 1.6


def test_limits_and_significance_agree_with_pyhf_where_its_fits_are_reliable():
    """Small yields, MC statistics and two normalisation systematics (one shared by signal and
    background): the same model built in pyhf (likelihood.pyhf_model) gives the same limits."""
    s, b, sumw2 = np.array([3.0, 8.0, 12.0]), np.array([50.0, 20.0, 6.0]), np.array([25.0, 16.0, 9.0])
    systematics = (Systematic("btag", np.array([1.1, 1.15, 1.2]), np.array([1.05, 1.1, 1.3])),
                   Systematic("background_norm", np.ones(3), np.full(3, 1.2)))
    for systs in ((), systematics):
        model = pyhf_model(BinnedModel(s, b, sumw2, systs), mu_max=50.0)
        asimov = b.tolist() + model.config.auxdata
        with np.errstate(divide="ignore", invalid="ignore"):
            _, expected = pyhf.infer.intervals.upper_limits.toms748_scan(
                asimov, model, 0.1, 10.0, level=0.05, test_stat="qtilde", rtol=1e-9)
        limit = expected_limit(s, b, sumw2, systematics=systs)
        assert [limit["band"][key] for key, _ in BAND] == pytest.approx([float(v) for v in expected], rel=1e-5)
        p0 = float(pyhf.infer.hypotest(0.0, (s + b).tolist() + model.config.auxdata, model, test_stat="q0"))
        assert expected_significance(s, b, sumw2, systematics=systs) == pytest.approx(norm.isf(p0), rel=1e-5)
    # the systematics weaken the limit
    assert expected_limit(s, b, sumw2, systematics=systematics)["mu_up"] > expected_limit(s, b, sumw2)["mu_up"]


def test_a_limit_that_cannot_be_computed_is_none_with_a_note(monkeypatch):
    import multiscale.evaluation.limits as limits

    def failing(model, mu, mu_asimov=0.0):
        raise ProfileError("the profile did not converge")

    monkeypatch.setattr(limits, "profiled_deviance", failing)
    histograms = {"signal": np.array([5.0]), "background": np.array([100.0]), "background_sumw2": np.array([100.0]),
                  "low_statistics": False, "min_effective_events": 10}
    result = limits.limit_from_histograms(histograms, 2.0)
    assert result["mu_up"] is None and result["xsec_up_fb"] is None
    assert "did not converge" in result["note"]


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
    prediction = weighted_toy(n_sig=1000, n_bkg=1500, background_xsec_fb=10.0)
    result = classifier_limit(prediction, 3000.0, n_bins=5)
    assert result["mu_up"] > 0 and result["signal_xsec_fb"] == 0.5
    assert result["xsec_up_fb"] == pytest.approx(result["mu_up"] * 0.5)
    assert result["xsec_band_fb"]["+1sigma"] == pytest.approx(result["band"]["+1sigma"] * 0.5)
    # the binned score does better than one bin holding everything
    one_bin = expected_limit([result["S"]], [result["B"]], [result["histograms"]["background_sumw2"].sum()])
    assert result["mu_up"] < one_bin["mu_up"]


# --- every choice on the validation sample, the number on the test sample ---------------------------------------

TOY_S, TOY_B = 100.0, 1e6  # expected signal and background of the toy below


def scored_toy(rng, n_sig=5000, n_bkg=3000):
    """(is_signal, score, yields): signal score uniform, background density 2 (1 - x), background weights
    log-normal (N_eff ~ n_bkg / e), normalised like yields.py to S = TOY_S, B = TOY_B. Above a
    threshold t, S(t) = TOY_S (1 - t) and B(t) = TOY_B (1 - t)^2: every cut has the same true
    S/sqrt(B) (a plateau, as classifiers often have), so a scan picks its sample's fluctuations."""
    weight = rng.lognormal(0.0, 1.0, n_bkg)
    score = np.r_[rng.uniform(size=n_sig), 1.0 - np.sqrt(rng.uniform(size=n_bkg))]
    yields = np.r_[np.full(n_sig, TOY_S / n_sig), TOY_B * weight / weight.sum()]
    return np.r_[np.ones(n_sig, bool), np.zeros(n_bkg, bool)], score, yields


TOY_SIGNIFICANCE = TOY_S / np.sqrt(TOY_B)  # at every cut


def test_best_cut_chosen_on_the_test_sample_is_biased_upward():
    """The quoted S/sqrt(B) minus that of the same cut on a fresh sample (in units of the true S/sqrt(B)),
    at the study's N_eff floor of 30: chosen on the test sample itself it is positive on average
    (the scan picks the test's downward background fluctuations); chosen on a validation sample the
    test and the fresh sample are exchangeable, so it is 0 on average."""
    rng = np.random.default_rng(28)
    excess, ratio = {"test": [], "validation": []}, {"test": [], "validation": []}
    for _ in range(300):
        test, validation, fresh = (scored_toy(rng) for _ in range(3))
        chosen = {"test": best_significance(*test, min_background_events=30)["threshold"],
                  "validation": choose_score_cut(*validation, min_background_events=30)}
        for name, threshold in chosen.items():
            quoted = significance_at(*test, threshold, min_background_events=30)["significance"]
            on_fresh = significance_at(*fresh, threshold, min_background_events=30)["significance"]
            excess[name].append((quoted - on_fresh) / TOY_SIGNIFICANCE)
            ratio[name].append(quoted / TOY_SIGNIFICANCE)
    mean = {name: np.mean(v) for name, v in excess.items()}
    error = {name: np.std(v, ddof=1) / np.sqrt(len(v)) for name, v in excess.items()}
    assert mean["test"] > 0.05 and mean["test"] > 5 * error["test"]  # measured: +0.078 +- 0.006
    assert abs(mean["validation"]) < 3 * error["validation"]  # measured: -0.014 +- 0.007
    assert np.mean(ratio["test"]) > 1.05  # quoted / true: measured 1.087 (on validation: 1.000)


def test_significance_at_a_fixed_cut_by_hand():
    is_signal = np.array([1, 1, 0, 0, 0, 1], bool)
    score = np.array([0.9, 0.4, 0.8, 0.6, 0.2, 0.6])
    y = np.array([2.0, 1.0, 4.0, 5.0, 3.0, 1.0])
    result = significance_at(is_signal, score, y, 0.6, min_background_events=1)
    # kept: score >= 0.6, ties included: signal 2 + 1, background 4 + 5
    assert (result["S"], result["B"]) == (3.0, 9.0)
    assert result["significance"] == pytest.approx(1.0)
    assert result["background_effective_events"] == pytest.approx(81 / 41)
    assert result["signal_efficiency"] == pytest.approx(0.75) and result["background_efficiency"] == pytest.approx(0.75)
    assert not result["low_statistics"]
    assert significance_at(is_signal, score, y, 0.6, min_background_events=3)["low_statistics"]
    above = significance_at(is_signal, score, y, 0.95)  # nothing kept
    assert above["significance"] is None and "no background" in above["note"]
    assert significance_at(is_signal, score, y, None)["significance"] is None
    # at the threshold it picked, the scan and the fixed cut agree
    best = best_significance(is_signal, score, y, min_background_events=1)
    fixed = significance_at(is_signal, score, y, best["threshold"], min_background_events=1)
    assert {k: fixed[k] for k in best} == best


def test_validated_significance_chooses_on_validation_and_counts_on_test():
    validation, test = weighted_toy(seed=11), weighted_toy(seed=12)
    result = validated_significance(validation, test, 3000.0)
    y_val = yield_weights(validation, 3000.0)
    threshold = best_significance(validation.is_signal, validation.score, y_val)["threshold"]
    assert result["threshold"] == threshold == result["chosen_on_validation"]["threshold"]
    y = yield_weights(test, 3000.0)
    kept = test.score >= threshold
    assert result["S"] == pytest.approx(y[kept & test.is_signal].sum())
    assert result["B"] == pytest.approx(y[kept & ~test.is_signal].sum())
    assert result["significance"] != result["chosen_on_validation"]["significance"]


def test_score_binning_chosen_on_validation_is_applied_to_test():
    validation, test = weighted_toy(seed=21), weighted_toy(seed=22)
    edges = choose_score_binning(validation, 3000.0, n_bins=20)
    assert edges == score_histograms(validation, 3000.0, n_bins=20)["edges"]
    hist = score_histograms(test, 3000.0, n_bins=20, validation=validation)
    assert hist["edges"] == edges  # not the test sample's own merging
    assert hist["edges"] != score_histograms(test, 3000.0, n_bins=20)["edges"]
    # every test event counts (open outer bins), each in the bin of the validation edges
    s, b = expected_yields(test, 3000.0)
    assert hist["signal"].sum() == pytest.approx(s) and hist["background"].sum() == pytest.approx(b)
    y, inner = yield_weights(test, 3000.0), np.asarray(edges[1:-1])
    in_top = ~test.is_signal & (test.score >= inner[-1])
    assert hist["background"][-1] == pytest.approx(y[in_top].sum())
    assert hist["low_statistics"] == bool(np.any(hist["background_effective_events"] < 10 * (1 - 1e-9)))
    limit = classifier_limit(test, 3000.0, n_bins=20, validation=validation)
    assert limit["histograms"]["edges"] == edges and limit["mu_up"] > 0


def test_a_validation_bin_without_test_background_joins_its_neighbour():
    process = np.array([HH4B, HH4B, HH4B, QCD, QCD, QCD])
    test = toy(process, score=[0.1, 0.5, 0.95, 0.1, 0.2, 0.5], xsec_fb=np.full(6, 3.0))  # no background above 0.9
    hist = histograms_on_binning(test, 1.0, [0.0, 0.4, 0.9, 1.0], min_background_events=1)
    assert hist["edges"] == [0.0, 0.4, 1.0]
    np.testing.assert_allclose(hist["signal"], [1.0, 2.0])
    np.testing.assert_allclose(hist["background"], [2.0, 1.0])
    assert not hist["low_statistics"]
    assert histograms_on_binning(test, 1.0, [0.0, 0.4, 0.9, 1.0], min_background_events=2)["low_statistics"]


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


def test_systematics_come_from_the_histograms_variations_and_weaken_the_limit():
    from multiscale.evaluation.limits import limit_from_histograms, systematics_of

    prediction = weighted_toy(n_sig=1000, n_bkg=1500, background_xsec_fb=10.0)
    # the b-efficiency at +1 sigma: signal (4 b subjets, all tagged in the signal-like toy) up by 1.05^4,
    # background by 1.05^2; at -1 sigma the inverse-ish
    sig = prediction.is_signal
    prediction.arrays["btag_weight_up"] = np.where(sig, 1.05**4, 1.05**2)
    prediction.arrays["btag_weight_down"] = np.where(sig, 0.95**4, 0.95**2)
    hist = score_histograms(prediction, 3000.0, n_bins=5)
    up = hist["variations"]["btag_up"]
    np.testing.assert_allclose(up["signal"], hist["signal"] * 1.05**4)
    np.testing.assert_allclose(up["background"], hist["background"] * 1.05**2)
    systematics = systematics_of(hist)
    assert [s.name for s in systematics] == ["background_norm", "btag_eff"]
    np.testing.assert_allclose(systematics[1].signal, np.sqrt(1.05**4 / 0.95**4))
    plain = limit_from_histograms(hist, 0.5)
    with_systematics = limit_from_histograms(hist, 0.5, systematics=systematics)
    assert with_systematics["mu_up"] > plain["mu_up"]
    # without the variation branches only the normalisation remains
    del prediction.arrays["btag_weight_up"], prediction.arrays["btag_weight_down"]
    assert [s.name for s in systematics_of(score_histograms(prediction, 3000.0, n_bins=5))] == ["background_norm"]
