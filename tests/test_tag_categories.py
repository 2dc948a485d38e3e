"""The analysis region and its tag categories: the study's limits combine exactly 3 and 4 b-tagged subjets
(multiscale.study.mass_scan), the region and the categories set by the study's config (Study)."""

import numpy as np
import pytest
import yaml

from multiscale.evaluation.io import Prediction
from multiscale.evaluation.limits import choose_score_binning
from multiscale.evaluation.yields import restrict
from multiscale.study import cut_folds, mass_scan, training_eval
from multiscale.study.workflow import Study, parse_numbers
from tests.helpers import REPO, default_config

QCD, HH4B = 0, 2
LUMINOSITY = 3000.0


def truth_tagged(n_background=3000, n_signal=600, signal_at_3_tags=0.0, background_at_4_tags=0.1, seed=1):
    """Test copies as truth tagging writes them: every event one copy at 3 tags (fj1 2 + fj2 1) and one at 4, with
    the class probability in its weight: the signal's 4-tag copies weigh 1 - signal_at_3_tags (0: the 4-tag
    category alone holds the signal). Signal scores high, more so at 4 tags; background low."""
    rng = np.random.default_rng(seed)
    n = n_background + n_signal
    process = np.r_[np.full(n_background, QCD), np.full(n_signal, HH4B)]
    score = np.r_[rng.beta(2, 5, n_background), rng.beta(5, 2, n_signal)]
    p4 = np.where(process == HH4B, 1.0 - signal_at_3_tags, background_at_4_tags)
    columns = []
    for tags, probability in ((3, 1.0 - p4), (4, p4)):
        keep = probability > 0
        columns.append({"process": process[keep], "event_id": np.flatnonzero(keep), "weight": probability[keep],
                        "score_is_signal": np.minimum(score[keep] + 0.05 * (tags - 3), 1.0),
                        "fj1_nbtag": np.full(keep.sum(), 2), "fj2_nbtag": np.full(keep.sum(), tags - 2)})
    arrays = {name: np.concatenate([c[name] for c in columns]) for name in columns[0]}
    arrays["is_signal"] = arrays["process"] == HH4B
    arrays["xsec_fb"] = np.where(arrays["is_signal"], 10.0, 3e4)
    arrays["acceptance"] = np.ones(len(arrays["process"]))
    return Prediction("toy", arrays)


def limit_of(prediction, validation, categories=()):
    """The evaluation of a training on its test fold ``prediction``, its choices made on ``validation``."""
    entry, _ = training_eval.evaluate_training(prediction, validation, LUMINOSITY, 10, 30, categories=categories)
    return entry


def in_category(prediction, tags):
    return restrict(prediction, prediction.arrays["fj1_nbtag"] + prediction.arrays["fj2_nbtag"] == tags)


def test_the_combined_limit_is_the_4_tag_limit_when_only_4_tags_hold_signal():
    """The 3-tag category without signal adds nothing: the combination is the 4-tag category's limit exactly."""
    events, validation = truth_tagged(signal_at_3_tags=0.0), truth_tagged(signal_at_3_tags=0.0, seed=2)
    combined, alone = limit_of(events, validation, [3, 4]), limit_of(in_category(events, 4), in_category(validation, 4))
    for key in ("limit", "limit_no_mc_stat", "limit_syst"):
        assert combined[key]["xsec_up_fb"] == pytest.approx(alone[key]["xsec_up_fb"], rel=1e-12)
    assert list(combined["categories"]) == ["4"] and combined["limit"]["n_bins"] == alone["limit"]["n_bins"]


def test_the_combined_limit_uses_both_categories_bins():
    """Signal in both categories: the combination has both categories' score bins side by side, each bin above the
    N_eff floor, and a limit stronger than either category alone and than one set of bins for the whole region."""
    events, validation = truth_tagged(signal_at_3_tags=0.4), truth_tagged(signal_at_3_tags=0.4, seed=2)
    combined = limit_of(events, validation, [3, 4])
    three, four = (limit_of(in_category(events, tags), in_category(validation, tags)) for tags in (3, 4))
    region = limit_of(events, validation)
    categories = combined["categories"]
    assert list(categories) == ["3", "4"] and all(c["in_limit"] and c["S"] > 0 for c in categories.values())
    assert combined["limit"]["n_bins"] == three["limit"]["n_bins"] + four["limit"]["n_bins"] == sum(
        c["n_bins"] for c in categories.values())
    assert not combined["limit"]["low_statistics"]
    for key in ("limit", "limit_no_mc_stat"):
        limits = {name: entry[key]["xsec_up_fb"] for name, entry in
                  (("combined", combined), ("3", three), ("4", four), ("region", region))}
        assert limits["combined"] < min(limits["3"], limits["4"], limits["region"]), (key, limits)
    # the categories' yields are the region's (sigma x BR x L of the signal), split
    assert sum(c["S"] for c in categories.values()) == pytest.approx(10.0 * LUMINOSITY, rel=1e-9)


def test_the_pooled_cut_based_limit_adds_the_categories_of_every_fold(monkeypatch):
    """The cuts: one selection per fold, its selected events counted per category; the pooled limit averages each
    category's count over the folds and combines the categories. (Background at 4 tags 50%: >= 3 tags is the best
    S/sqrt(B), so the selection keeps both categories.)"""
    folds = {f: with_cut_observables(truth_tagged(signal_at_3_tags=0.4, background_at_4_tags=0.5, seed=10 + f))
             for f in range(3)}
    monkeypatch.setattr(cut_folds, "event_files", lambda files, mass, chosen, n_folds: chosen[0])
    monkeypatch.setattr(cut_folds, "read_events", lambda fold, min_tags: folds[fold])
    split, pooled = cut_folds.cut_based_folds(None, 1000.0, [0, 1, 2], 3, LUMINOSITY, 30, 3, [3, 4])
    whole, pooled_whole = cut_folds.cut_based_folds(None, 1000.0, [0, 1, 2], 3, LUMINOSITY, 30, 3, [])
    for fold in range(3):
        assert split[fold]["definition"] == whole[fold]["definition"] and split[fold]["selection"]["min_btags"] <= 3
        assert split[fold]["limit"]["n_bins"] == 2 and whole[fold]["limit"]["n_bins"] == 1
        assert split[fold]["limit_no_mc_stat"]["xsec_up_fb"] < whole[fold]["limit_no_mc_stat"]["xsec_up_fb"]
    means = {label: np.mean([split[f]["categories"][label]["B"] for f in range(3)]) for label in ("3", "4")}
    assert {label: c["B"] for label, c in pooled["categories"].items()} == pytest.approx(means, rel=1e-12)
    assert (pooled["S"], pooled["B"], pooled["background_effective_events"]) == pytest.approx(
        (pooled_whole["S"], pooled_whole["B"], pooled_whole["background_effective_events"]), rel=1e-12)
    assert pooled["limit_no_mc_stat"]["xsec_up_fb"] < pooled_whole["limit_no_mc_stat"]["xsec_up_fb"]


def test_the_score_cut_and_the_limit_bins_are_chosen_on_the_validation_fold():
    """A training's best score cut and each tag category's score bins come from its validation fold: another
    validation sample moves them, another test sample does not (it only changes what they are evaluated on)."""
    test, validation = truth_tagged(signal_at_3_tags=0.4, seed=1), truth_tagged(signal_at_3_tags=0.4, seed=2)
    entry = limit_of(test, validation, [3, 4])
    other_test = limit_of(truth_tagged(signal_at_3_tags=0.4, seed=3), validation, [3, 4])
    other_validation = limit_of(test, truth_tagged(signal_at_3_tags=0.4, seed=4), [3, 4])

    def choices(result):
        return result["significance"]["threshold"], {label: c["edges"] for label, c in result["categories"].items()}

    assert choices(other_test) == choices(entry)
    assert other_test["significance"]["S"] != entry["significance"]["S"]  # evaluated on the other test sample
    threshold, edges = choices(other_validation)
    assert threshold != entry["significance"]["threshold"] and edges != choices(entry)[1]
    # the chosen cut is the validation sample's best, the binning its equal-signal-efficiency bins
    assert entry["significance"]["chosen_on_validation"]["threshold"] == entry["significance"]["threshold"]
    for label, tags in (("3", 3), ("4", 4)):
        chosen = choose_score_binning(in_category(validation, tags), LUMINOSITY, 10, 30)
        assert entry["categories"][label]["edges"] == pytest.approx(chosen)


def test_the_cut_based_optimum_is_chosen_off_the_test_fold(monkeypatch):
    """The cuts of test fold 0 are optimised on folds 1 and 2: other events in fold 0 leave the selection as it is,
    other events in fold 1 may move it. Each fold's result carries its smooth-fit limit and sculpting check."""
    folds = {f: with_cut_observables(truth_tagged(signal_at_3_tags=0.4, background_at_4_tags=0.5, seed=10 + f))
             for f in range(3)}
    monkeypatch.setattr(cut_folds, "event_files", lambda files, mass, chosen, n_folds: chosen[0])
    monkeypatch.setattr(cut_folds, "read_events", lambda fold, min_tags: folds[fold])

    def selection():
        result = cut_folds.cut_based_folds(None, 1000.0, [0], 3, LUMINOSITY, 30, 3, [3, 4])[0][0]
        assert {"limit_smooth", "sculpting"} <= set(result)
        return result["selection"], result["B"]

    chosen, background = selection()
    folds[0] = with_cut_observables(truth_tagged(signal_at_3_tags=0.1, background_at_4_tags=0.9, seed=40))
    other_test = selection()
    assert other_test[0] == chosen and other_test[1] != background
    folds[1] = folds[2] = with_cut_observables(truth_tagged(signal_at_3_tags=0.0, background_at_4_tags=0.02, seed=41))
    assert selection()[0]["min_btags"] == 4 != chosen["min_btags"]  # 4-tag signal, 3-tag background there


def with_cut_observables(prediction):
    """The fat jets of every copy inside the Higgs window, back to back at eta 0: m_jj at m_H for the signal,
    spread over 500-1500 GeV for the background (kinematics shared by the copies of one event)."""
    arrays = dict(prediction.arrays)
    n = len(prediction)
    spread = 500.0 + 1000.0 * np.random.default_rng(7).random(int(arrays["event_id"].max()) + 1)
    mjj = np.where(prediction.is_signal, 1000.0, spread[arrays["event_id"]])
    pt = np.sqrt((mjj / 2) ** 2 - 125.0**2)
    for jet, phi in (("fj1", 0.0), ("fj2", np.pi)):
        arrays.update({f"{jet}_pt": pt, f"{jet}_eta": np.zeros(n), f"{jet}_phi": np.full(n, phi),
                       f"{jet}_mass": np.full(n, 125.0), f"{jet}_sdmass": np.full(n, 120.0)})
    return Prediction(prediction.path, arrays)


# --- the setting: one owner (Study), the evaluation's options follow it ----------------------------------------


@pytest.mark.parametrize("min_tags, categories, expected", [
    (3, None, [3, 4]), (2, None, [2, 3, 4]), (4, None, [4]), (3, [3], [3]), (2, [2, 3], [2, 3])])
def test_the_categories_follow_the_region(min_tags, categories, expected):
    study = Study(default_config(min_tags=min_tags, categories=categories))
    assert study.categories == expected


def test_the_default_region_is_3_tags_in_two_categories():
    config = yaml.safe_load((REPO / "config" / "mass_scan.yaml").read_text())
    assert config["min_tags"] == 3 and Study(config).categories == [3, 4]


@pytest.mark.parametrize("categories", [[2, 3, 4], [4], [4, 3], [3, 3, 4]])
def test_categories_that_do_not_cut_the_region_are_refused(categories):
    with pytest.raises(ValueError, match=r"categories: .* do not cut the region of >= 3 tags into parts"):
        Study(default_config(min_tags=3, categories=categories))


@pytest.mark.parametrize("min_tags, valid", [(0, False), (1, False), (2, True), (3, True), (4, True), (5, False)])
def test_the_schema_takes_min_tags_2_3_or_4(min_tags, valid):
    jsonschema = pytest.importorskip("jsonschema")
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "mass_scan.schema.yaml").read_text())
    config = default_config(min_tags=min_tags)
    if valid:
        jsonschema.validate(config, schema)
    else:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(config, schema)


def test_categories_on_the_command_line_are_numbers():
    assert parse_numbers("[3,4]", "categories", "") == [3, 4] and parse_numbers(["3"], "categories", "") == [3]
    with pytest.raises(ValueError, match="categories: 'x' is not a number"):
        parse_numbers("3,x", "categories", "categories=[3,4]")


@pytest.mark.parametrize("options, error", [
    (["--categories", "3", "4"], None),
    (["--min-tags", "2", "--categories", "3", "4"], "--categories: [3, 4] do not cut the region of >= 2 tags"),
    (["--categories", "4", "3"], "--categories: [4, 3] do not cut the region of >= 4 tags"),
    (["--categories", "3", "5"], "up to 4"),
])
def test_the_evaluation_takes_categories_from_its_region(tmp_path, capsys, options, error):
    common = ["--out", str(tmp_path), "--masses", "1000", "--models", "kin", "--signal-events", "1000", "s_0.root",
              "--background-events", "b_0.root"]
    if error is None:
        args = mass_scan.parse_args([*common, *options])
        assert (args.min_tags, args.categories) == (3, [3, 4])
        return
    with pytest.raises(SystemExit):
        mass_scan.parse_args([*common, *options])
    assert error in capsys.readouterr().err
