"""The mass-decorrelated score cut (evaluation/decorrelation.py) on weighted toys whose score grows with m_JJ."""

import numpy as np
import pytest

from multiscale.evaluation.decorrelation import fit_decorrelated_cut, threshold_keeping
from multiscale.evaluation.smooth_background import sculpting_check


def toy_background(seed, n=20000):
    """A falling m_JJ spectrum (GeV), a score that rises with m_JJ (as a tagger of a heavy resonance does; its
    logit not linear in ln m), and log-normal weights (pT-hat biasing)."""
    rng = np.random.default_rng(seed)
    mass = 500.0 + rng.exponential(400.0, n)
    score = 1 / (1 + np.exp(-(2 * np.sqrt(mass / 900.0) - 3 + rng.normal(0, 1, n))))
    weight = rng.lognormal(0.0, 0.5, n)
    return mass, score, weight


def test_the_cut_keeps_the_background_mass_shape_that_a_plain_cut_sculpts():
    # a validation sample 10x the test sample: its quantiles' noise (which the check on the test sample also sees)
    # stays small against the test sample's
    efficiency = 0.1
    validation, test = toy_background(1, n=100000), toy_background(2, n=10000)
    mass, score, weight = test
    plain = score >= threshold_keeping(validation[1], validation[2], efficiency)
    cut = fit_decorrelated_cut(*validation, efficiency)
    decorrelated = cut.passes(mass, score)
    assert len(cut.thresholds) > 2 and np.all(np.diff(cut.thresholds) > 0)  # the threshold follows the score's rise
    # the same background kept overall, but spread evenly over m_JJ
    for passed in (plain, decorrelated):
        assert weight[passed].sum() / weight.sum() == pytest.approx(efficiency, rel=0.15)
    assert sculpting_check(mass, weight, plain)["p_value"] < 1e-6
    assert sculpting_check(mass, weight, decorrelated)["p_value"] > 0.01


def test_the_threshold_keeps_the_weighted_fraction():
    rng = np.random.default_rng(3)
    score, weight = rng.uniform(size=500), rng.lognormal(0, 1, 500)
    for efficiency in (0.05, 0.3, 1.0):
        t = threshold_keeping(score, weight, efficiency)
        kept = weight[score >= t].sum() / weight.sum()
        above = weight[score > t].sum() / weight.sum()
        assert kept >= efficiency * (1 - 1e-9) and above < efficiency


def test_few_events_give_one_bin_the_plain_cut():
    mass, score, weight = toy_background(4, n=300)
    cut = fit_decorrelated_cut(mass, score, weight, 0.02)  # ~ 5 effective events pass: one bin
    assert len(cut.thresholds) == 1
    assert np.all(cut.passes(mass, score) == (score >= threshold_keeping(score, weight, 0.02)))


def test_an_efficiency_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="efficiency"):
        fit_decorrelated_cut(*toy_background(5, n=100), 0.0)
