"""The mass scan's parts: the parameterised network's mass input, pT-hat biased generation, paired
comparisons and the study's evaluation on toy prediction files."""

import json
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
    from multiscale.study.predictions import event_files, files_in
    from multiscale.study.workflow import fold_of

    # a fourth background (wjets) in the study directory is read as one, whatever its name
    for sub, stem in (("generated", "hh4b_mH1000_2000"), ("truth_test", "qcd_11"), ("truth_test", "ttbar_12"),
                      ("truth_test", "wjets_15")):
        (tmp_path / sub).mkdir(exist_ok=True)
        for chunk in range(6):
            (tmp_path / sub / f"{stem}_{chunk}.root").touch()
    assert [fold_of(f"x_{c}.root", 3) for c in range(6)] == [0, 1, 2, 0, 1, 2]
    study = files_in(tmp_path, [1000.0, 800.0])
    files = event_files(study, 1000.0, [1], n_folds=3)
    assert sorted(f.name for f in files) == sorted(
        f"{stem}_{c}.root" for stem in ("hh4b_mH1000_2000", "qcd_11", "ttbar_12", "wjets_15") for c in (1, 4))
    assert event_files(study, 800.0, [1], n_folds=3) == [f for f in files if "hh4b" not in f.name]


def test_the_evaluation_takes_the_files_it_is_handed(tmp_path, capsys):
    """The workflow hands every sample's files (Study): those, and only those, are the signal and backgrounds."""
    from multiscale.study.mass_scan import parse_args
    from multiscale.study.predictions import event_files

    common = ["--out", str(tmp_path), "--masses", "1000", "--models", "kin", "--folds", "2"]
    args = parse_args([*common, "--signal-events", "1000", "s_0.root", "s_1.root", "--background-events", "wjets_0.root",
                       "wjets_1.root", "qcd_1.root", "--training-backgrounds", "wjets_t_0.root"])
    assert [f.name for f in event_files(args.files, 1000.0, [0], 2)] == ["s_0.root", "wjets_0.root"]
    assert [f.name for f in args.files["training_backgrounds"]] == ["wjets_t_0.root"]
    for wrong, message in (([], "give either --data DIR or the files"),
                           (["--signal-events", "600", "s_0.root", "--background-events", "b_0.root"],
                            "no signal files at m_H = 1000 GeV")):
        with pytest.raises(SystemExit):
            parse_args([*common, *wrong])
        assert message in capsys.readouterr().err


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


def test_detectable_ratio_has_the_stated_power():
    """Simulated paired log ratios with the detectable mean are found significant in ~80% of cases."""
    from scipy import stats

    from multiscale.evaluation.tagger_comparison import detectable_ratio, pairs_needed

    rng = np.random.default_rng(1)
    sd, n = 0.3, 6
    ratio = detectable_ratio(sd, n)
    samples = rng.normal(np.log(ratio), sd, size=(4000, n))
    p = stats.ttest_1samp(samples, 0.0, axis=1).pvalue
    assert np.mean(p < 0.05) == pytest.approx(0.8, abs=0.03)
    assert pairs_needed(sd, ratio * (1 + 1e-9)) == n
    # with the correction for overlapping folds there is a floor: no number of pairs detects less
    floor = detectable_ratio(sd, 10_000, test_train_ratio=0.25)
    assert pairs_needed(sd, np.exp(0.9 * np.log(floor)), test_train_ratio=0.25) is None


def test_the_study_and_the_evaluation_command_share_one_evaluation_of_a_training(tmp_path):
    """The mass scan's evaluation of a training (study.training_eval) and the evaluation command's
    (evaluation.summary) give the same ROC figures from the same predictions: one path, not two copies."""
    from multiscale.evaluation.io import read_prediction
    from multiscale.evaluation.metrics import SIGNAL_EFFICIENCIES
    from multiscale.evaluation.summary import evaluate_training as command_evaluation
    from multiscale.study.training_eval import evaluate_training as study_evaluation

    rng = np.random.default_rng(3)
    test = read_prediction(write_toy(tmp_path / "test.root", rng))
    validation = read_prediction(write_toy(tmp_path / "validation.root", rng))
    study, study_curve = study_evaluation(test, validation, 3000.0, 10, 30)
    command, command_curve = command_evaluation(test, 3000.0, SIGNAL_EFFICIENCIES, 30)
    assert study["auc"] == command["auc"] and study["working_points"] == command["working_points"]
    np.testing.assert_array_equal(study_curve.background_efficiency, command_curve.background_efficiency)


def test_the_two_spreads_say_what_a_missing_training_does():
    """The study summarises the folds that gave a value and counts them; the command's model figure is void when
    one training gave none (and infinite when one is): the same mean and sd where every training gave one."""
    from multiscale.evaluation.summary import spread, usable_spread

    values = [2.0, 4.0, 9.0]
    assert (spread(values)["mean"], spread(values)["std"]) == (usable_spread(values)["mean"], usable_spread(values)["std"])
    assert usable_spread([2.0, None, 4.0, np.inf]) == {"mean": 3.0, "std": pytest.approx(np.sqrt(2.0)), "n": 2}
    assert spread([2.0, None, 4.0])["mean"] is None and spread([2.0, np.inf])["mean"] == np.inf
    assert usable_spread([1.0, np.e], log_spread=True)["log_std"] == pytest.approx(np.sqrt(0.5))


# --- the evaluation end to end on toy prediction files -------------------------------------------------------


def write_toy(path, rng, separation=1.0, n_signal=300, n_background=3000, first_event=0):
    """Prediction (or event) file of a toy study at m_H = 1 TeV: fat jets back to back at eta 0 in the Higgs window
    with 3 b-tags; signal m_JJ ~ 950 GeV, background falling from 500 GeV (pT-hat-like weights); the score
    separates them by ``separation``."""
    from tests.test_evaluate import HH4B, QCD, write_prediction

    mass = np.r_[rng.normal(950.0, 50.0, n_signal), 500.0 * (1.0 + rng.pareto(3.0, n_background))]
    process = np.r_[np.full(n_signal, HH4B), np.full(n_background, QCD)]
    score = 1.0 / (1.0 + np.exp(-rng.normal(np.where(process == HH4B, separation, -separation), 1.0)))
    pt = np.sqrt((mass / 2) ** 2 - 120.0**2)
    xsec = np.where(process == HH4B, 10.0, 3e4)
    jets = {f"{jet}_{field}": value for jet in ("fj1", "fj2") for field, value in
            (("pt", pt), ("mass", np.full(len(mass), 120.0)), ("sdmass", np.full(len(mass), 120.0)))}
    return write_prediction(path, score, process, xsec_fb=xsec, event_id=first_event + np.arange(len(mass)),
                            fj1_nbtag=np.full(len(mass), 2),
                            fj2_nbtag=np.full(len(mass), 1), **jets)


def test_taggers_on_different_test_entries_are_bootstrapped_each_on_its_own(tmp_path):
    """Predictions that do not hold the same test entries give no paired ratio, a note, and each tagger's own
    rejections (the evaluation goes on)."""
    from multiscale.study.comparisons import rejection_bootstraps
    from multiscale.study.predictions import read_test_sample

    rng = np.random.default_rng(5)
    paths = {"cross": write_toy(tmp_path / "a.root", rng), "concat": write_toy(tmp_path / "b.root", rng, first_event=10**6)}
    predictions = {model: read_test_sample(path, min_tags=3) for model, path in paths.items()}
    result = rejection_bootstraps(predictions, luminosity_fb=3000.0, n_bootstrap=20)
    assert result["ratios"] == {} and "note" in result
    assert set(result["rejections"]) == set(result["per_model"]) == {"cross", "concat"}


@pytest.fixture(scope="module")
def toy_study(tmp_path_factory):
    """Two models (cross separates better than kin) trained on two folds of three at m_H = 1 TeV, each with its test
    and validation predictions, the event files of the cuts; mass_scan run on it."""
    from multiscale.study.mass_scan import main
    from multiscale.study.predictions import prediction_path
    from multiscale.study.workflow import validation_path

    out = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(5)
    for model, separation in (("kin", 0.8), ("cross", 1.2)):
        for fold in (0, 1):
            path = prediction_path(out, model, 1000.0, fold, "paperb")
            path.parent.mkdir(parents=True)
            # the same test events for both models (one test sample per fold), scores of their own
            write_toy(path, np.random.default_rng(10 + fold), separation, first_event=100_000 * (fold + 1))
            write_toy(validation_path(path), np.random.default_rng(20 + fold), separation,
                      first_event=100_000 * (fold + 2))
    events = out / "events"
    events.mkdir()
    # the cuts' events, file by file (chunk c in fold c)
    signal = [write_toy(events / f"hh4b_{c}.root", rng, n_background=0, first_event=10_000 * c) for c in range(3)]
    background = [write_toy(events / f"qcd_{c}.root", rng, n_signal=0, first_event=10_000 * c) for c in range(3)]
    main(["--out", str(out), "--masses", "1000", "--models", "kin", "cross", "--folds", "3", "--min-events", "150",
          "--bootstrap", "50", "--jobs", "2", "--signal-events", "1000", *map(str, signal), "--background-events",
          *map(str, background)])
    return out, json.loads((out / "results.json").read_text())


def test_results_hold_the_smooth_fit_limits_and_the_sculpting_check(toy_study):
    out, results = toy_study
    for model in ("kin", "cross", "cut-based"):
        for fold in ("0", "1"):
            entry = results["per_training"][model]["1000"][fold]
            smooth = entry["limit_smooth"]
            assert smooth["xsec_up_fb"] > 0 and "dijet function" in smooth["background_model"], (model, fold, smooth)
            assert 0 <= entry["sculpting"]["p_value"] <= 1 and entry["sculpting"]["n_dof"] >= 1
        spread = results["summary"][model]["1000"]["limit_smooth_fb"]
        assert spread["n"] == 2 and spread["log_std"] is not None
        assert (out / "img" / f"sculpting_{model}_mH1000.png").stat().st_size > 0
    # the networks' cut is the one chosen on the validation fold
    entry = results["per_training"]["cross"]["1000"]["0"]
    assert entry["limit_smooth"]["threshold"] == entry["significance"]["chosen_on_validation"]["threshold"]
    assert (out / "img" / "limit_vs_mass_smooth.png").stat().st_size > 0
    assert "## Limits from a smooth background" in (out / "results.md").read_text()


def test_results_hold_the_smooth_fit_after_the_mass_decorrelated_cut(toy_study):
    out, results = toy_study
    for model in ("kin", "cross"):
        for fold in ("0", "1"):
            entry = results["per_training"][model]["1000"][fold]
            cut = entry["decorrelated_cut"]
            # the plain cut's background efficiency on the validation fold, kept in every m_JJ bin
            assert 0 < cut["background_efficiency"] < 1 and len(cut["thresholds"]) >= 1
            assert entry["limit_smooth_decorrelated"]["xsec_up_fb"] > 0
            pass_fraction = entry["limit_pass_fraction"]
            assert pass_fraction["xsec_up_fb"] > 0 and "times the fraction passing it" in pass_fraction["background_model"]
            assert 0 < pass_fraction["pass_fraction"]["value"] < 1
            assert 0 <= entry["sculpting_decorrelated"]["p_value"] <= 1
        assert results["summary"][model]["1000"]["limit_smooth_decorrelated_fb"]["n"] == 2
        assert (out / "img" / f"decorrelated_sculpting_{model}_mH1000.png").stat().st_size > 0
    assert "decorrelated_cut" not in results["per_training"]["cut-based"]["1000"]["0"]  # a score cut only
    assert (out / "img" / "limit_vs_mass_smooth_decorrelated.png").stat().st_size > 0
    assert "| pass fraction: limit [fb] | spread |" in (out / "results.md").read_text()


def test_results_hold_the_taggers_compared_at_fixed_signal_efficiency(toy_study):
    out, results = toy_study
    rejection = results["per_training"]["cross"]["1000"]["0"]["rejection_bootstrap"]
    assert set(rejection) == {"0.30", "0.50"} and rejection["0.30"]["sd_log"] > 0
    comparison = results["tagger_comparisons"]["cross vs kin @ 1000"]
    assert comparison["repeats"] == "shared" and comparison["test_train_ratio"] == pytest.approx(1.0)  # 1 / (3 - 2)
    for eff in ("0.30", "0.50"):
        test = comparison[eff]
        assert test["n_pairs"] == 2 and test["ratio"] > 1  # cross separates better
        assert {"p_value", "p_holm", "detectable_ratio", "pairs_for_20_percent"} <= set(test)
        assert test["bootstrap_sd_log"] > 0 and set(test["bootstrap"]) == {"0", "1"}
    assert "## Taggers compared at fixed signal efficiency" in (out / "results.md").read_text()
    assert "Nadeau-Bengio" in (out / "results.md").read_text()


def test_taggers_are_compared_on_the_pooled_out_of_fold_test_sample(toy_study):
    """The test folds of both trainings together: one test sample twice as large, common to the taggers, whose
    bootstrap is narrower than one fold's."""
    out, results = toy_study
    pooled = results["pooled_rejections"]["1000"]
    assert pooled["folds_pooled"] == 2
    for eff in ("0.30", "0.50"):
        ratio = pooled["ratios"]["cross / kin"][eff]
        low, high = ratio["interval"]
        assert ratio["ratio"] > 1 and low <= ratio["ratio"] <= high  # cross separates better
    # at 50% the background kept is large enough for every replicate to keep some (at 30% a fold's may keep none)
    per_fold = [results["per_training"]["cross"]["1000"][f]["rejection_bootstrap"]["0.50"]["sd_log"] for f in ("0", "1")]
    assert pooled["per_model"]["cross"]["0.50"]["sd_log"] < min(per_fold)
    assert "## Taggers on one large common test sample" in (out / "results.md").read_text()


def test_a_test_folds_predictions_are_each_read_once(toy_study, monkeypatch):
    """The trainings of one test fold are evaluated and bootstrapped from one reading of each prediction, and give
    what the study's run wrote."""
    from multiscale.evaluation.io import read_prediction
    from multiscale.study import mass_scan
    from multiscale.study.predictions import prediction_path
    from multiscale.study.workflow import validation_path

    out, results = toy_study
    reads = []
    monkeypatch.setattr(mass_scan, "read_prediction", lambda path: reads.append(Path(path)) or read_prediction(path))
    trainings = {model: prediction_path(out, model, 1000.0, 0, "paperb") for model in ("kin", "cross")}
    job = (trainings, 0, 3000.0, 10, 150, None, [], None, {model: None for model in trainings}, 20)
    evaluated, boot = mass_scan._evaluate_test_fold(job)
    assert sorted(reads) == sorted([*trainings.values(), *map(validation_path, trainings.values())])
    for model in trainings:
        assert evaluated[model][0]["auc"] == results["per_training"][model]["1000"]["0"]["auc"]
    assert set(boot["rejections"]) == set(trainings) and set(boot["ratios"]) == {("cross", "kin")}


def test_the_limit_comparisons_use_the_power_of_the_noncentral_t():
    from multiscale.evaluation import tagger_comparison
    from multiscale.study import comparisons

    assert comparisons.power is tagger_comparison.power
    assert comparisons.test_train_ratio(5) == pytest.approx(1 / 3)  # one test fold against the 3 trained on


def test_the_evaluation_reads_the_predictions_it_is_handed(toy_study):
    """The workflow hands the predictions it declares: only those are evaluated, and a file that is none of the
    models' predictions is refused by name."""
    from multiscale.study.predictions import find_predictions, prediction_path
    from multiscale.study.workflow import validation_path

    out, _ = toy_study
    kin = prediction_path(out, "kin", 1000.0, 0, "paperb")
    found = find_predictions(out, ["kin", "cross"], [1000.0], "paperb", given=[kin, validation_path(kin)])
    assert found == {"kin": {1000.0: {0: kin}}}
    # on disk there are both models' two folds
    assert sum(len(f) for m in find_predictions(out, ["kin", "cross"], [1000.0], "paperb").values() for f in m.values()) == 4
    with pytest.raises(SystemExit, match="stray.root is not a prediction"):
        find_predictions(out, ["kin"], [1000.0], "paperb", given=[kin, validation_path(kin), out / "stray.root"])
