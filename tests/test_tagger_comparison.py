"""Taggers compared at fixed signal efficiency (evaluation/tagger_comparison.py): the rejection, the group
bootstrap over test events, paired ratios, the repeat-paired test and its power from the noncentral t."""

import numpy as np
import pytest
from scipy import stats

from multiscale.evaluation import tagger_comparison as tc
from multiscale.evaluation.io import Prediction, PredictionError
from multiscale.evaluation.metrics import roc


# --- the rejection of one prediction --------------------------------------------------------------------------


def test_rejection_at_fixed_signal_efficiency_by_hand():
    # signal at 0.9, 0.8, 0.7, 0.6 (weight 1 each); background at 0.85, 0.65, 0.5, 0.4 weighted 1, 1, 2, 4
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.85, 0.65, 0.5, 0.4])
    is_signal = np.arange(8) < 4
    weight = np.array([1, 1, 1, 1, 1, 1, 2, 4], dtype=float)
    # eps_S = 50%: the cut at 0.8 keeps the background at 0.85, 1/8 of it; 30% lies on the same eps_B
    result = tc.rejections(is_signal, score, weight)
    assert result[0.5]["rejection"] == pytest.approx(8.0) and result[0.3]["rejection"] == pytest.approx(8.0)
    # the physical weights count: that background event weighted 2 of 9
    weight[4] = 2.0
    assert tc.rejections(is_signal, score, weight)[0.5]["rejection"] == pytest.approx(4.5)


def test_the_bootstraps_presorted_roc_is_sklearns():
    rng = np.random.default_rng(3)
    is_signal = rng.random(3000) < 0.4
    score = np.round(rng.normal(is_signal * 1.2, 1.0), 2)  # rounded: ties, as network scores have
    weight = rng.exponential(1.0, 3000)
    curve = tc._SortedScore(is_signal, score).curve(weight)
    reference = roc(is_signal, score, weight)
    np.testing.assert_allclose(curve.signal_efficiency, reference.signal_efficiency, atol=1e-12)
    np.testing.assert_allclose(curve.background_efficiency, reference.background_efficiency, atol=1e-12)


# --- the group bootstrap --------------------------------------------------------------------------------------

COPIES = 4


def copied_toy(rng, n_events=400):
    """Signal events (one entry each) and background events of COPIES truth-tag copies each: the copies
    share the event's score (perfectly correlated) and split its weight."""
    signal = rng.normal(1.5, 1.0, n_events)
    background = rng.normal(0.0, 1.0, n_events)
    score = np.r_[signal, np.repeat(background, COPIES)]
    is_signal = np.r_[np.ones(n_events, bool), np.zeros(n_events * COPIES, bool)]
    weight = np.r_[np.ones(n_events), np.full(n_events * COPIES, 1.0 / COPIES)]
    group = np.r_[np.arange(n_events), n_events + np.repeat(np.arange(n_events), COPIES)]
    return score, is_signal, weight, group


def log_rejection_sd(replicates):
    return np.log(replicates).std(axis=0, ddof=1)


def test_group_bootstrap_keeps_the_copies_of_one_event_together():
    rng = np.random.default_rng(11)
    # the truth: the spread of the rejection over independent test samples
    samples = []
    for _ in range(150):
        score, is_signal, weight, group = copied_toy(rng)
        samples.append([wp["rejection"] for wp in tc.rejections(is_signal, score, weight, group).values()])
    truth = log_rejection_sd(np.array(samples))
    score, is_signal, weight, group = copied_toy(rng)
    by_event = log_rejection_sd(tc.bootstrap_rejections({"a": score}, is_signal, weight, group, n_bootstrap=300)["a"])
    by_copy = log_rejection_sd(tc.bootstrap_rejections({"a": score}, is_signal, weight, np.arange(len(score)),
                                                       n_bootstrap=300)["a"])
    print(f"sd of log rejection at 30%, 50%: test samples {truth}, bootstrap by event {by_event}, by copy {by_copy}")
    # the event bootstrap reproduces the spread of independent test samples; drawing copies one by one
    # treats each event as four and is about sqrt(4) = 2x too narrow
    np.testing.assert_allclose(by_event, truth, rtol=0.3)
    assert np.all(by_copy < 0.75 * truth)


def test_copies_of_one_event_must_share_the_label():
    with pytest.raises(ValueError, match="copies of one event"):
        tc.bootstrap_rejections({"a": np.array([0.1, 0.2, 0.3])}, np.array([True, False, False]), np.ones(3),
                                np.array([0, 0, 1]), n_bootstrap=2)


def test_the_ratio_of_two_taggers_is_paired():
    rng = np.random.default_rng(5)
    score, is_signal, weight, group = copied_toy(rng, n_events=2000)
    positive = score - score.min() + 1.0
    scores = {"a": positive, "same_order": positive**2, "other": positive + rng.normal(0.0, 0.3, len(score))}
    replicates = tc.bootstrap_rejections(scores, is_signal, weight, group, n_bootstrap=200)
    # a monotone transform of a tagger is the same tagger: ratio 1 in every replicate, when both see the same events
    same = tc.ratio_interval(replicates["a"], replicates["same_order"])
    assert all(entry["sd_log"] == pytest.approx(0.0, abs=1e-12) for entry in same.values())
    assert all(entry["interval"] == pytest.approx([1.0, 1.0]) for entry in same.values())
    # a correlated tagger: the paired ratio is far narrower than the two rejections' spreads combined
    paired = tc.ratio_interval(replicates["a"], replicates["other"])
    own = [tc.rejection_interval(replicates[name]) for name in ("a", "other")]
    for eff in tc.SIGNAL_EFFICIENCIES:
        unpaired = np.hypot(own[0][eff]["sd_log"], own[1][eff]["sd_log"])
        assert paired[eff]["sd_log"] < 0.8 * unpaired


def test_a_stratum_keeps_its_total():
    # the background of two samples: one event of sample X carrying most of the background yield at high score,
    # 200 events of sample Y at low score; drawn with the rest, X is missing from ~37% of the replicates
    rng = np.random.default_rng(2)
    n = 200
    score = np.r_[rng.uniform(0.5, 1.0, n), 0.99, rng.uniform(0.0, 0.5, n)]
    is_signal = np.r_[np.ones(n, bool), np.zeros(n + 1, bool)]
    weight = np.r_[np.ones(n), 100.0, np.full(n, 0.05)]
    sample = np.r_[np.zeros(n), 1, np.full(n, 2)]
    group = np.arange(len(score))
    drawn_together = tc.bootstrap_rejections({"a": score}, is_signal, weight, group, n_bootstrap=100)["a"]
    per_sample = tc.bootstrap_rejections({"a": score}, is_signal, weight, group, n_bootstrap=100, stratum=sample)["a"]
    assert tc.rejection_interval(drawn_together)[0.3]["n_infinite"] > 10
    # each sample keeps its sigma x A: X's yield is fixed, the rejection at 30% (X kept) the same in every replicate
    assert tc.rejection_interval(per_sample)[0.3]["n_infinite"] == 0
    np.testing.assert_allclose(per_sample[:, 0], 110.0 / 100.0)


def test_common_test_sample_refuses_taggers_on_different_events():
    def prediction(path, event_id):
        n = len(event_id)
        return Prediction(path, {"is_signal": np.arange(n) % 2 == 0, "score_is_signal": np.linspace(0, 1, n),
                                 "process": np.where(np.arange(n) % 2 == 0, 2, 0), "event_id": np.asarray(event_id),
                                 "weight": np.ones(n), "xsec_fb": np.ones(n), "acceptance": np.ones(n)})

    is_signal, weight, group, scores = tc.common_test_sample(
        {"a": prediction("a.root", [0, 1, 2, 3]), "b": prediction("b.root", [0, 1, 2, 3])}, 1.0)
    assert set(scores) == {"a", "b"} and len(group) == 4 and weight.sum() == pytest.approx(2.0)
    with pytest.raises(PredictionError, match="b.root: not the test entries of a.root"):
        tc.common_test_sample({"a": prediction("a.root", [0, 1, 2, 3]), "b": prediction("b.root", [0, 1, 3, 2])}, 1.0)


# --- repeats paired, power ------------------------------------------------------------------------------------


def shortcut_difference(sd, n_pairs, test_train_ratio=0.0):
    """The sum-of-quantiles shortcut for the smallest difference n_pairs pairs detect at 80% power (two-sided, 5%):
    (t_{0.975} + t_{0.8}) x the corrected sem, the approximation the noncentral t is checked against."""
    dof = n_pairs - 1
    return (stats.t.isf(0.025, dof) + stats.t.ppf(0.8, dof)) * sd * np.sqrt(1.0 / n_pairs + test_train_ratio)


def test_compare_repeats_states_its_design():
    a, b = [12.0, 14.0, 13.0, 15.0], [10.0, 11.5, 11.0, 12.0]
    independent = tc.compare_repeats(a, b, tc.INDEPENDENT)
    shared = tc.compare_repeats(a, b, tc.SHARED, test_train_ratio=0.25)
    assert independent["repeats"] == "independent" and independent["test_train_ratio"] == 0.0
    assert independent["ratio"] == pytest.approx(np.exp(np.mean(np.log(a) - np.log(b))))
    # Nadeau-Bengio: sem s sqrt(1/4 + 1/4) against s sqrt(1/4)
    assert shared["sem"] == pytest.approx(independent["sem"] * np.sqrt(2.0))
    assert shared["p_value"] > independent["p_value"]
    assert shared["detectable_ratio"] > independent["detectable_ratio"]
    with pytest.raises(ValueError, match="test_train_ratio"):
        tc.compare_repeats(a, b, tc.SHARED)
    with pytest.raises(ValueError, match="independent repeats"):
        tc.compare_repeats(a, b, tc.INDEPENDENT, test_train_ratio=0.25)
    with pytest.raises(ValueError, match="repeats must be"):
        tc.compare_repeats(a, b, "folds")


def test_noncentral_t_power_at_three_pairs_is_below_the_shortcuts_promise():
    # the sum-of-quantiles shortcut's smallest detectable difference for 3 pairs of spread 1 promises 80%
    n, sd = 3, 1.0
    delta = shortcut_difference(sd, n)
    exact = tc.power_of_t_test(delta, sd, n)
    # Monte Carlo of the two-sided paired t-test at 5% on 3 normal differences of mean delta
    rng = np.random.default_rng(7)
    diff = rng.normal(delta, sd, size=(200_000, n))
    t = diff.mean(axis=1) / (diff.std(axis=1, ddof=1) / np.sqrt(n))
    rejected = np.mean(np.abs(t) > stats.t.isf(0.025, n - 1))
    print(f"3 pairs at the shortcut's detectable difference: noncentral t {exact:.4f}, Monte Carlo {rejected:.4f}")
    assert exact < 0.78 and rejected < 0.78
    assert exact == pytest.approx(rejected, abs=4 * np.sqrt(exact * (1 - exact) / len(t)))
    # the same at the noncentral t's own detectable ratio: 80%
    assert tc.power_of_t_test(np.log(tc.detectable_ratio(sd, n)), sd, n) == pytest.approx(0.8, abs=1e-6)
    assert tc.detectable_ratio(sd, n) > np.exp(delta)


def test_detectable_ratio_shrinks_with_pairs_and_inverts_pairs_needed():
    sd = 0.15
    ratios = [tc.detectable_ratio(sd, n) for n in range(2, 40)]
    assert all(later < earlier for earlier, later in zip(ratios, ratios[1:]))
    for n in (3, 5, 12):
        assert tc.pairs_needed(sd, tc.detectable_ratio(sd, n) * (1 + 1e-9)) == n
    # with shared training events the variance of the mean has a floor: beyond it no number of pairs helps
    floor_ratio = np.exp(sd * np.sqrt(0.25) * (stats.norm.isf(0.025) + stats.norm.ppf(0.8)))
    assert tc.pairs_needed(sd, floor_ratio * 0.95, test_train_ratio=0.25) is None
    assert tc.pairs_needed(sd, floor_ratio * 1.1, test_train_ratio=0.25) is not None
    assert tc.detectable_ratio(None, 5) is None and tc.detectable_ratio(sd, 1) is None


def test_power_is_a_drop_in_for_the_mass_scans():
    test = {"n_pairs": 5, "sd": 0.2}
    result = tc.power(test, 0.25)
    assert set(result) == {"detectable_ratio", "pairs_for_10_percent", "pairs_for_20_percent", "scale_for_20_percent"}
    assert result["detectable_ratio"] > np.exp(shortcut_difference(0.2, 5, 0.25))
    assert result["pairs_for_10_percent"] is None  # 0.2 x sqrt(0.25) x 2.8 > log 1.1: the floor
    assert tc.power({"n_pairs": 1, "sd": None}, 0.0)["detectable_ratio"] is None


def test_the_scale_needed_brings_the_detectable_ratio_to_the_goal():
    """With the spread shrunk as 1/sqrt(scale), the same pairs detect exactly 1.2 at 80% power."""
    from multiscale.evaluation.tagger_comparison import detectable_ratio, scale_needed

    sd, pairs, c = 0.4, 3, 1 / 3
    scale = scale_needed(sd, pairs, 1.2, c)
    assert scale > 1
    assert detectable_ratio(sd / np.sqrt(scale), pairs, c) == pytest.approx(1.2, rel=1e-6)
    # a spread small enough already: no more events needed
    assert scale_needed(0.01, pairs, 1.2, c) == 1.0
