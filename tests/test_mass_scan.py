"""The mass scan's parts: the parameterised network's mass input, pT-hat biased generation, paired
comparisons and the study's evaluation on toy prediction files."""

from pathlib import Path

import numpy as np

import pytest
import torch

from multiscale.preprocessing import mass_hypothesis
from multiscale.study.compare import log_ratio, paired_difference
from multiscale.synthetic import synthetic_inputs
from multiscale.weaver_io import build_model, load_data_config

REPO_ROOT = Path(__file__).resolve().parents[1]

MASSES = [600, 800, 1000, 1500, 2000]


def test_mass_hypothesis_keeps_signal_masses_and_spreads_background():
    mH = np.r_[np.full(5, 1500.0), np.zeros(10_000)]
    hypothesis = mass_hypothesis(mH, np.arange(len(mH)), MASSES)
    np.testing.assert_array_equal(hypothesis[:5], 1500.0)
    counts = np.array([(hypothesis[5:] == m).sum() for m in MASSES])
    assert counts.sum() == 10_000 and counts.min() > 1700  # about 2000 each
    np.testing.assert_array_equal(mass_hypothesis(mH, np.arange(len(mH)), MASSES), hypothesis)  # fixed per event
    np.testing.assert_array_equal(mass_hypothesis(mH[5:], np.arange(10_000), [800]), 800.0)  # one hypothesis


@pytest.fixture(scope="module")
def param_config():
    return load_data_config(REPO_ROOT / "data" / "jets_kin_param.yaml")


def test_the_mass_input_reaches_the_parameterised_network(param_config):
    names = list(param_config.input_dicts["ev_features"])
    position = names.index("obj_mhyp")
    assert position == 6, "the paper preset keeps the first obj_max_features object features: keep the mass 7th"

    def outputs(obj_max_features):
        torch.manual_seed(0)
        model, info = build_model(param_config, fusion="cross", preset="paper", obj_max_features=obj_max_features)
        model.eval()
        inputs = synthetic_inputs(info, 16, generator=torch.Generator().manual_seed(3))
        ev = info["input_names"].index("ev_features")
        low, high = [x.clone() for x in inputs], [x.clone() for x in inputs]
        low[ev][:, position], high[ev][:, position] = -1.2, 1.6  # standardised 600 and 2000 GeV
        with torch.no_grad():
            return model(*low), model(*high)

    low, high = outputs(7)
    assert (low - high).abs().max() > 1e-3  # the hypothesis changes the output
    low, high = outputs(6)
    torch.testing.assert_close(low, high)  # and only through that feature


def test_paired_difference_and_log_ratio():
    result = paired_difference([1.0, 2.0, 3.0, 4.0], [0.5, 1.4, 2.6, 3.4])
    assert result["mean"] == pytest.approx(0.525) and result["significant"] is True
    assert paired_difference([1.0, 2.0], [1.1, 1.8])["significant"] is False
    assert paired_difference([1.0, None, 3.0], [1.0, 2.0, None])["n_pairs"] == 1
    ratio = log_ratio([2.0, 4.0, 8.0], [1.0, 2.0, 4.0])
    assert ratio["ratio"] == pytest.approx(2.0) and ratio["p_value"] == 0.0


def test_chunks_are_dealt_to_folds_round_robin(tmp_path):
    """The workflow writes chunks_per_fold files per fold: chunk c is in fold c % folds,
    and the evaluation must read the same files as the trainings did."""
    from multiscale.study.mass_scan import event_files, fold_of

    for sub, stem in (("generated", "hh4b_mH1000_2000"), ("truth_test", "qcd_11"), ("truth_test", "ttbar_12")):
        (tmp_path / sub).mkdir(exist_ok=True)
        for chunk in range(6):
            (tmp_path / sub / f"{stem}_{chunk}.root").touch()
    assert [fold_of(f"x_{c}.root", 3) for c in range(6)] == [0, 1, 2, 0, 1, 2]
    files = event_files(tmp_path, 1000.0, [1], n_folds=3)
    assert sorted(f.name for f in files) == sorted(
        f"{stem}_{c}.root" for stem in ("hh4b_mH1000_2000", "qcd_11", "ttbar_12") for c in (1, 4))
    assert event_files(tmp_path, 800.0, [1], n_folds=3) == [f for f in files if "hh4b" not in f.name]


def test_predictions_concatenate_keeps_the_common_branches():
    from multiscale.evaluation.io import Prediction

    first = Prediction("a", {"w": np.array([1.0, 2.0]), "x": np.array([0, 1]), "only_a": np.array([5, 6])})
    second = Prediction("b", {"w": np.array([3.0]), "x": np.array([2])})
    both = Prediction.concatenate([first, second])
    assert set(both.arrays) == {"w", "x"}
    np.testing.assert_array_equal(both.arrays["w"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(both.arrays["x"], [0, 1, 2])


def test_roc_colours_follow_the_model_not_the_order(tmp_path):
    """The ROC plot gives each model the colour of the limit and significance plots (plots.STYLES),
    whatever order the models come in."""
    from matplotlib.colors import same_color

    from multiscale.evaluation.metrics import roc
    from multiscale.study.plots import STYLES, roc_at

    rng = np.random.default_rng(1)
    is_signal = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    curve = roc(is_signal, rng.normal(is_signal.astype(float), 1.0))
    models = ["kin", "cross", "my_model"]
    summary = {"summary": {m: {"1000": {"auc": {"mean": 0.7, "std": None}}} for m in models}}
    fig = roc_at({m: [curve] for m in models}, summary, {}, 1000.0, tmp_path / "roc.png")
    colours = {line.get_label().split(",")[0]: line.get_color() for line in fig.axes[0].get_lines()}
    assert same_color(colours["kin"], STYLES["kin"][0]) and same_color(colours["cross"], STYLES["cross"][0])
    assert same_color(colours["my_model"], "C2")  # not in STYLES: by order
    assert (tmp_path / "roc.png").stat().st_size > 0


def test_compare_runs_pairs_the_same_trainings():
    """Only (model, mass, fold) present in both runs are compared; limits by paired ratio, AUC by difference."""
    from multiscale.study.compare_runs import compare_runs, markdown

    def run(folds, auc, limit):
        return {"per_training": {"cross": {"1000": {str(f): {"auc": auc + 0.001 * f, "limit": {"xsec_up_fb": limit * (f + 1)},
                                                              "limit_no_mc_stat": {"xsec_up_fb": 2 * limit}}
                                                    for f in folds}}}}

    rows = compare_runs(run([0, 1, 2], 0.90, 10.0), run([1, 2, 3], 0.95, 5.0))
    row = rows[("cross", 1000.0)]
    assert row["folds"] == ["1", "2"]
    auc_before, auc_after, auc_test = row["auc"]
    assert auc_before == pytest.approx(0.9015) and auc_after == pytest.approx(0.9515)
    assert auc_test["mean"] == pytest.approx(0.05) and auc_test["n_pairs"] == 2
    assert row["limit_fb"][2]["ratio"] == pytest.approx(0.5) and row["limit_no_mc_stat_fb"][2]["ratio"] == pytest.approx(0.5)
    assert "| cross @ 1000 | 1,2 |" in markdown(rows)
    assert compare_runs(run([0], 0.9, 1.0), run([1], 0.9, 1.0)) == {}


def test_corrected_resampled_t_test_is_more_cautious_than_the_naive_one():
    from multiscale.study.compare import paired_difference

    a, b = [1.0, 2.0, 3.0, 4.0, 5.0], [0.8, 1.7, 2.9, 3.6, 4.8]
    naive, corrected = paired_difference(a, b), paired_difference(a, b, test_train_ratio=0.25)
    assert naive["mean"] == corrected["mean"]
    # 5 folds share 3 of 4 training folds: the variance of the mean grows from s^2/5 to (1/5 + 1/4) s^2
    assert corrected["sem"] == pytest.approx(naive["sem"] * np.sqrt((1 / 5 + 1 / 4) * 5))
    assert corrected["p_value"] > naive["p_value"]


def test_holm_adjusts_in_step_down_order():
    from multiscale.study.compare import holm

    # sorted 0.01, 0.02, 0.03, 0.5 with 4 tests: 0.04, 0.06, 0.06 (monotone), 0.5; None stays
    assert holm([0.03, None, 0.01, 0.5, 0.02]) == pytest.approx([0.06, None, 0.04, 0.5, 0.06])


def test_detectable_difference_has_the_stated_power():
    """Simulated paired differences with the detectable mean are found significant in ~80% of cases."""
    from scipy import stats

    from multiscale.study.compare import detectable_difference, pairs_needed

    rng = np.random.default_rng(1)
    sd, n = 0.3, 6
    delta = detectable_difference(sd, n)
    samples = rng.normal(delta, sd, size=(4000, n))
    p = stats.ttest_1samp(samples, 0.0, axis=1).pvalue
    assert np.mean(p < 0.05) == pytest.approx(0.8, abs=0.03)
    assert pairs_needed(sd, delta) == n
    # with the correction for overlapping folds there is a floor: no number of pairs detects less
    floor = detectable_difference(sd, 10_000, test_train_ratio=0.25)
    assert pairs_needed(sd, 0.9 * floor, test_train_ratio=0.25) is None
