"""tools/evaluate.py and multiscale.evaluation on small hand-made prediction files.

The files mimic ``weaver --predict ... --predict-output pred.root`` with
``labels: simple: [is_signal, is_background]``: tree ``Events``, one-hot truth, softmax scores,
``_label_`` and the observers of the data config. Expected numbers are worked out by hand in the
comments, not copied from a run.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import uproot

from multiscale.evaluation import CutBasedSelection, PredictionError, evaluate_models, read_prediction
from multiscale.evaluation.cli import evaluate_main
from multiscale.evaluation.cutbased import dijet_mass, select
from multiscale.evaluation.metrics import auc, best_significance, rejection_at, roc
from multiscale.evaluation.yields import expected_yields, yield_weights

from tests.helpers import HH4B, QCD, TTBAR, hand_case, write_prediction

REPO = Path(__file__).resolve().parents[1]


# --- ROC, AUC, rejection ---------------------------------------------------------------------------------------


def test_perfect_classifier_has_auc_one(tmp_path):
    rng = np.random.default_rng(1)
    process = np.r_[np.full(200, HH4B), np.full(300, QCD)]
    score = np.where(process == HH4B, rng.uniform(0.6, 1.0, 500), rng.uniform(0.0, 0.4, 500))
    prediction = read_prediction(write_prediction(tmp_path / "perfect.root", score, process))
    assert auc(prediction.is_signal, prediction.score) == pytest.approx(1.0)
    # no background above 0.4: every signal efficiency is reached without background
    assert rejection_at(roc(prediction.is_signal, prediction.score), 0.8) == np.inf


def test_random_classifier_has_auc_one_half(tmp_path):
    rng = np.random.default_rng(2)
    process = np.r_[np.full(2000, HH4B), np.full(2000, QCD)]
    prediction = read_prediction(write_prediction(tmp_path / "random.root", rng.uniform(size=4000), process))
    # AUC of random scores: mean 0.5, std sqrt((n_s + n_b + 1) / (12 n_s n_b)) ~ 0.0065 here; 0.04 is > 6 sigma
    assert abs(auc(prediction.is_signal, prediction.score) - 0.5) < 0.04
    # a random classifier rejects 1/eps_S
    assert rejection_at(roc(prediction.is_signal, prediction.score), 0.5) == pytest.approx(2.0, rel=0.15)


def test_rejection_on_hand_checked_case(tmp_path):
    prediction = read_prediction(hand_case(tmp_path))
    curve = roc(prediction.is_signal, prediction.score)
    # eps_S = 0.3 lies on the diagonal from (0.25, 0) to (0.75, 0.25): eps_B = 0.25 * (0.05 / 0.5) = 0.025 -> 40
    assert rejection_at(curve, 0.3) == pytest.approx(40.0)
    # eps_S = 0.5: half way along the same segment, eps_B = 0.125 -> 8
    assert rejection_at(curve, 0.5) == pytest.approx(8.0)
    # eps_S = 0.8: on the flat step from (0.75, 0.5) to (1, 0.5): eps_B = 0.5 -> 2
    assert rejection_at(curve, 0.8) == pytest.approx(2.0)
    # eps_S = 0.75 exactly: both (0.75, 0.25) and (0.75, 0.5) qualify, a cut achieves the lower eps_B -> 4
    assert rejection_at(curve, 0.75) == pytest.approx(4.0)
    # AUC by counting pairs: signal 0.9 beats 4, each 0.6 beats 3 and ties 1 (0.5), 0.2 beats 2 -> 13/16
    assert auc(prediction.is_signal, prediction.score) == pytest.approx(13 / 16)


# --- yields and significance -----------------------------------------------------------------------------------


def test_yields_follow_cross_section_times_acceptance(tmp_path):
    """Two files of one process with different acceptances: sigmaA is the event mean."""
    # QCD: 3 events with xsec*acc = 100 * 0.2 = 20 fb and 1 event with 100 * 0.6 = 60 fb -> sigmaA = 30 fb
    # signal: 2 events, 2 fb * 0.5 = 1 fb
    process = [QCD] * 4 + [HH4B] * 2
    path = write_prediction(
        tmp_path / "norm.root", [0.1] * 6, process,
        xsec_fb=[100, 100, 100, 100, 2, 2], acceptance=[0.2, 0.2, 0.2, 0.6, 0.5, 0.5],
    )
    prediction = read_prediction(path)
    s, b = expected_yields(prediction, luminosity_fb=10.0)
    assert (s, b) == pytest.approx((10.0, 300.0))  # L * sigmaA: 10 * 1 and 10 * 30
    # half of the QCD MC events pass -> half of its yield, whichever file they came from
    s_cut, b_cut = expected_yields(prediction, 10.0, np.array([True, False, False, True, True, False]))
    assert (s_cut, b_cut) == pytest.approx((5.0, 150.0))


def test_significance_on_hand_checked_case(tmp_path):
    # 4 signal (xsec*acc = 1 fb -> 0.25 fb per event) and 8 QCD (8 fb -> 1 fb per event), L = 4 fb^-1:
    # each signal event is worth S = 1, each background event B = 4.
    sig_scores = [0.95, 0.9, 0.5, 0.2]
    bkg_scores = [0.92, 0.8, 0.7, 0.6, 0.4, 0.3, 0.1, 0.05]
    xsec = [1.0] * 4 + [8.0] * 8
    path = write_prediction(tmp_path / "z.root", sig_scores + bkg_scores, [HH4B] * 4 + [QCD] * 8, xsec_fb=xsec)
    prediction = read_prediction(path)
    weights = yield_weights(prediction, 4.0)
    # with >= 1 background event required, candidate cuts (score >= t) give S/sqrt(B):
    #   t=0.92: S=1, B=4 -> 0.5;  t=0.9: S=2, B=4 -> 1.0 (best);  t=0.8: 2/sqrt(8) = 0.71;
    #   t=0.5: S=3, B=16 -> 0.75; t=0.2: S=4, B=24 -> 0.82;       t=0.95 keeps no background: skipped
    best = best_significance(prediction.is_signal, prediction.score, weights, min_background_events=1)
    assert best["significance"] == pytest.approx(1.0)
    assert best["threshold"] == pytest.approx(0.9)
    assert (best["S"], best["B"], best["n_background_pass"]) == pytest.approx((2.0, 4.0, 1))
    # requiring >= 3 background events leaves t <= 0.7: 0.7 -> 2/sqrt(12) = 0.577, 0.5 -> 0.75,
    # 0.4 -> 3/sqrt(20) = 0.671, 0.2 -> 4/sqrt(24) = 0.816 (best), lower cuts add only background
    best3 = best_significance(prediction.is_signal, prediction.score, weights, min_background_events=3)
    assert best3["significance"] == pytest.approx(4 / np.sqrt(24))
    assert best3["threshold"] == pytest.approx(0.2)
    # more background events required than exist: no cut qualifies, and the result says why
    none = best_significance(prediction.is_signal, prediction.score, weights, min_background_events=9)
    assert none["significance"] is None and "9 background" in none["note"]


# --- cut-based reference ---------------------------------------------------------------------------------------


def test_cut_based_selects_the_hand_chosen_events(tmp_path):
    # Every event starts as a perfect candidate: m_SD 120 GeV, 2 b-tags per jet, and two back-to-back
    # massless-ish jets of pT 500 at eta 0 -> m_jj = 2 * 500 = 1000 GeV (with mass 1 GeV: ~1000.002).
    # Each later event breaks exactly one requirement.
    n = 8
    obs = {f"{jet}_{field}": np.full(n, value) for jet in ("fj1", "fj2")
           for field, value in (("pt", 500.0), ("eta", 0.0), ("mass", 1.0), ("sdmass", 120.0), ("nbtag", 2))}
    obs["fj2_phi"] = np.full(n, np.pi)
    obs["fj1_sdmass"][1] = 80.0  # event 1: fj1 below the Higgs window
    obs["fj2_sdmass"][2] = 160.0  # event 2: fj2 above the Higgs window
    obs["fj1_nbtag"][3], obs["fj2_nbtag"][3] = 1, 1  # event 3: 2 b-tags < 3
    obs["fj1_nbtag"][4], obs["fj2_nbtag"][4] = 2, 1  # event 4: exactly 3 b-tags: passes
    obs["fj1_pt"][5] = obs["fj2_pt"][5] = 350.0  # event 5: m_jj = 700 < 800
    obs["fj1_pt"][6] = obs["fj2_pt"][6] = 600.0  # event 6: m_jj = 1200 > 1100
    obs["fj1_eta"][7], obs["fj2_eta"][7] = 0.5, -0.5  # event 7: m_jj = 2 * 500 * cosh(0.5) = 1128 > 1100
    process = [HH4B, HH4B, HH4B, QCD, QCD, QCD, TTBAR, TTBAR]
    prediction = read_prediction(write_prediction(tmp_path / "cuts.root", [0.5] * n, process, **obs))

    mjj = dijet_mass(prediction.arrays)
    assert mjj[0] == pytest.approx(1000.0, abs=0.01)
    assert mjj[7] == pytest.approx(1000.0 * np.cosh(0.5), abs=0.01)
    selection = CutBasedSelection(mH=1000.0, sdmass_window=(90.0, 150.0), min_btags=3, mjj_window=(0.8, 1.1))
    assert np.flatnonzero(select(prediction.arrays, selection)).tolist() == [0, 4]
    # 4 b-tags required: event 4 (3 b-tags) drops out
    tight = CutBasedSelection(mH=1000.0, min_btags=4)
    assert np.flatnonzero(select(prediction.arrays, tight)).tolist() == [0]

    summary = evaluate_models({"m": [prediction]}, selection, luminosity_fb=1.0, min_background_events=1).summary
    (reference,) = summary["cut_based"]["samples"]
    # efficiencies are fractions of the expected yields (xsec = acceptance = 1, L = 1): signal 1 event of 3
    # -> 1/3; background: QCD yields 1 (1/3 per event) and ttbar 1 (1/2 per event), only QCD event 4 passes
    # -> eps_B = (1/3) / 2 = 1/6, rejection 6 (1/5 of the MC events: the mixture is cross-section weighted)
    assert reference["signal_efficiency"] == pytest.approx(1 / 3)
    assert reference["background_efficiency"] == pytest.approx(1 / 6)
    assert reference["background_rejection"] == pytest.approx(6.0)
    assert (reference["n_signal_pass"], reference["n_background_pass"]) == (1, 1)
    # one background MC event passes: N_eff = 1, enough for the minimum of 1 asked for here
    assert reference["background_effective_events"] == pytest.approx(1.0)
    assert not reference["low_statistics"]
    # yields (xsec = acceptance = 1, L = 1): S = 1/3 (1 of 3 signal events), B = QCD 1/3 (1 of its 3 events)
    # + ttbar 0 (0 of 2) -> S/sqrt(B) = sqrt(1/3)
    assert (reference["S"], reference["B"]) == pytest.approx((1 / 3, 1 / 3))
    assert reference["significance"] == pytest.approx(np.sqrt(1 / 3))


# --- combining trainings ---------------------------------------------------------------------------------------


def test_same_name_files_give_mean_and_std(tmp_path):
    rng = np.random.default_rng(3)
    process = np.r_[np.full(300, HH4B), np.full(300, QCD)]
    predictions = []
    for seed, separation in enumerate((0.5, 1.0, 2.0)):
        score = 1 / (1 + np.exp(-(separation * (process == HH4B) + rng.normal(size=600))))
        predictions.append(read_prediction(write_prediction(tmp_path / f"t{seed}.root", score, process)))
    single = read_prediction(write_prediction(tmp_path / "other.root", rng.uniform(size=600), process))
    summary = evaluate_models({"model": predictions, "other": [single]}, CutBasedSelection()).summary

    aucs = [auc(p.is_signal, p.score) for p in predictions]
    assert aucs[0] < aucs[1] < aucs[2]  # the three trainings really differ
    model = summary["models"]["model"]
    assert model["trainings"] == 3
    assert model["auc"]["per_training"] == pytest.approx(aucs)
    assert model["auc"]["mean"] == pytest.approx(np.mean(aucs))
    assert model["auc"]["std"] == pytest.approx(np.std(aucs, ddof=1))
    rejections = [rejection_at(roc(p.is_signal, p.score), 0.5) for p in predictions]
    assert model["rejection"]["0.50"]["mean"] == pytest.approx(np.mean(rejections))
    assert model["rejection"]["0.50"]["std"] == pytest.approx(np.std(rejections, ddof=1))
    # a single training has no spread; the same test sample gives one cut-based reference for both models
    assert summary["models"]["other"]["auc"]["std"] is None
    (reference,) = summary["cut_based"]["samples"]
    assert reference["models"] == ["model", "other"]


# --- command line ----------------------------------------------------------------------------------------------


def run_cli(*args):
    return subprocess.run([sys.executable, str(REPO / "tools" / "evaluate.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO)


def test_cli_writes_all_outputs(tmp_path):
    rng = np.random.default_rng(4)
    process = np.r_[np.full(100, HH4B), np.full(150, QCD), np.full(50, TTBAR)]
    files = []
    for i in range(3):
        score = np.clip(0.5 * (process == HH4B) + rng.uniform(0, 0.6, 300), 0, 1)
        xsec = np.where(process == HH4B, 10.0, 1e4)
        files.append(write_prediction(tmp_path / f"cross_{i}.root", score, process, xsec_fb=xsec))
    files.append(write_prediction(tmp_path / "concat.root", rng.uniform(size=300), process))
    outdir = tmp_path / "out"
    evaluate_main([*map(str, files), "--outdir", str(outdir), "--names", "cross", "cross", "cross", "concat",
                   "--lumi", "300"])
    for name in ("roc.png", "roc.pdf", "scores.png", "metrics.json", "metrics.md"):
        assert (outdir / name).stat().st_size > 0, name
    metrics = json.loads((outdir / "metrics.json").read_text())
    assert list(metrics["models"]) == ["cross", "concat"]
    assert metrics["models"]["cross"]["trainings"] == 3
    assert metrics["models"]["cross"]["n_signal"] == 100 and metrics["models"]["cross"]["n_background"] == 200
    assert metrics["luminosity_fb"] == 300
    assert metrics["models"]["cross"]["auc"]["mean"] > metrics["models"]["concat"]["auc"]["mean"]
    assert metrics["cut_based"]["selection"]["min_btags"] == 3
    table = (outdir / "metrics.md").read_text()
    assert "| cross | 3 |" in table and "| concat | 1 |" in table and "cut-based" in table


def test_cli_default_names_are_file_stems(tmp_path):
    path = hand_case(tmp_path, "my_model.root")
    evaluate_main([str(path), "--outdir", str(tmp_path / "out"), "--min-bkg-events", "1"])
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert list(metrics["models"]) == ["my_model"]


def test_cli_flags_working_points_below_ten_effective_events(tmp_path):
    # hand case: 4 background MC events in all, so every working point rests on < 10 effective events
    path = hand_case(tmp_path, "few.root")
    evaluate_main([str(path), "--outdir", str(tmp_path / "out")])
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    model = metrics["models"]["few"]
    assert model["low_statistics"] == ["0.30", "0.50", "0.80", "cut_based"]
    (training,) = model["per_training"]
    # eps_S = 0.8 needs the cut score >= 0.2 (ROC point (1, 2/4)): 2 unweighted background events kept
    assert training["working_points"]["0.80"]["background_effective_events"] == pytest.approx(2.0)
    assert training["working_points"]["0.80"]["low_statistics"] is True
    assert training["background_mc"]["effective_events"] == pytest.approx(4.0)
    assert training["significance"]["significance"] is None  # no cut keeps 10 effective events
    table = (tmp_path / "out" / "metrics.md").read_text()
    assert "2.00 †" in table and "N_eff = 2.0" in table


def test_cli_without_schema_branches_skips_what_needs_them(tmp_path):
    """A prediction file without the yields' or the cut-based branches still gives ROC and AUC; the
    figures that need them are skipped, each with its reason."""
    path = write_prediction(tmp_path / "plain.root", [0.9, 0.8, 0.3, 0.1], [HH4B, HH4B, QCD, QCD],
                            drop=("xsec_fb", "fj2_sdmass"))
    result = run_cli(path, "--outdir", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    skipped = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert any("S/√B" in line and "xsec_fb" in line for line in skipped), result.stderr
    assert any("cut-based" in line for line in skipped)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["models"]["plain"]["auc"]["mean"] == pytest.approx(1.0)  # unweighted: every signal above
    assert metrics["cut_based"]["samples"] == [] and set(metrics["skipped"]) == {
        "expected yields and S/√B", "cut-based reference"}


@pytest.mark.slow
def test_cli_reads_another_label_as_signal(tmp_path):
    """ParT-style labels: the truth is label_sig, the score score_label_sig; without --signal the error
    names the labels the file has."""
    path = tmp_path / "foreign.root"
    truth = np.array([1, 1, 0, 0, 0], dtype=bool)
    score = np.array([0.7, 0.2, 0.4, 0.1, 0.05], dtype=np.float32)
    with uproot.recreate(path) as f:
        f.mktree("Events", {"label_sig": bool, "label_bkg": bool, "score_label_sig": np.float32,
                            "score_label_bkg": np.float32})
        f["Events"].extend({"label_sig": truth, "label_bkg": ~truth, "score_label_sig": score,
                            "score_label_bkg": 1 - score})
    result = run_cli(path, "--outdir", tmp_path / "out")
    assert result.returncode != 0 and result.stderr.count("\n") == 1
    assert "label_bkg, label_sig" in result.stderr and "--signal" in result.stderr
    result = run_cli(path, "--outdir", tmp_path / "out", "--signal", "label_sig")
    assert result.returncode == 0, result.stderr
    auc = json.loads((tmp_path / "out" / "metrics.json").read_text())["models"]["foreign"]["auc"]["mean"]
    assert auc == pytest.approx(5 / 6)  # 5 of the 6 signal-background pairs ordered


def test_cli_missing_score_is_a_one_line_error(tmp_path):
    path = write_prediction(tmp_path / "broken.root", [0.9, 0.1], [HH4B, QCD], drop=("score_is_signal",))
    result = run_cli(path, "--outdir", tmp_path / "out")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "score_is_signal" in lines[0]
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.parametrize("problem", ["missing file", "no Events tree", "names length"])
@pytest.mark.slow
def test_cli_other_errors_are_one_line(tmp_path, problem):
    good = hand_case(tmp_path)
    if problem == "missing file":
        args, expected = [tmp_path / "nope.root"], "nope.root: no such file"
    elif problem == "no Events tree":
        other = tmp_path / "other_tree.root"
        with uproot.recreate(other) as handle:
            handle["Jets"] = {"x": np.zeros(3)}
        args, expected = [other], "no 'Events' tree"
    else:
        args, expected = [good, good, "--names", "a"], "--names has 1 entries for 2"
    result = run_cli(*args, "--outdir", tmp_path / "out")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and expected in result.stderr


def test_reader_names_file_and_branch(tmp_path):
    path = write_prediction(tmp_path / "no_score.root", [0.5, 0.5], [HH4B, QCD], drop=("score_is_signal",))
    with pytest.raises(PredictionError, match=r"no_score\.root: missing branch\(es\) score_is_signal"):
        read_prediction(path)


def test_a_restricted_prediction_keeps_the_yields_of_its_events():
    """mass_scan --min-tags: the copies of a tighter tag region keep the yields they had (each sample's
    acceptance scaled by its kept weight fraction); dropped alone, each sample's rest was scaled up to its
    whole cross section."""
    from multiscale.evaluation.io import Prediction
    from multiscale.evaluation.yields import restrict, yield_weights

    rng = np.random.default_rng(5)
    n = 400
    arrays = {"process": np.repeat([0, 1, 2], [150, 150, 100]), "weight": rng.uniform(0.1, 2.0, n),
              "xsec_fb": np.repeat([1e4, 3e3, 10.0], [150, 150, 100]), "acceptance": np.full(n, 0.2),
              "is_signal": np.repeat([0, 0, 1], [150, 150, 100]).astype(float), "score_is_signal": rng.random(n),
              "fj1_nbtag": rng.integers(0, 3, n), "fj2_nbtag": rng.integers(0, 3, n)}
    events = Prediction("toy", arrays)
    kept = arrays["fj1_nbtag"] + arrays["fj2_nbtag"] >= 3
    before = yield_weights(events, 3000.0)
    after = yield_weights(restrict(events, kept), 3000.0)
    np.testing.assert_allclose(after, before[kept], rtol=1e-12)
    assert len(after) < n


# --- prediction files that cannot be normalised: one line, nothing written ------------------------------------


def unnormalisable(tmp_path, branch, value):
    """The hand case with ``branch`` of the background set to ``value`` (weights kept finite and positive)."""
    values = np.full(8, 1.0)
    values[4:] = value
    return write_prediction(tmp_path / f"bad_{branch}.root", [0.9, 0.6, 0.6, 0.2, 0.6, 0.3, 0.1, 0.05],
                            [HH4B] * 4 + [QCD] * 4, weight=np.full(8, 1e-3), **{branch: values})


@pytest.mark.parametrize("branch, value, expected", [
    ("acceptance", -0.5, "'acceptance' is -0.5 (<= 0) for 4 of 4 events"),  # B < 0 and no AUC, exit 0
    ("acceptance", 0.0, "'acceptance' is 0 (<= 0)"),  # ZeroDivisionError in the cut-based reference
    ("acceptance", np.nan, "'acceptance' is NaN or infinite"),  # sklearn: "Input sample_weight contains NaN"
    ("acceptance", np.inf, "'acceptance' is NaN or infinite"),
    ("xsec_fb", np.nan, "'xsec_fb' is NaN or infinite"),
    ("xsec_fb", -1.0, "'xsec_fb' is -1 (<= 0)"),
])
def test_a_prediction_that_cannot_be_normalised_is_one_line(tmp_path, branch, value, expected):
    path = unnormalisable(tmp_path, branch, value)
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main([str(path), "--outdir", str(tmp_path / "out"), "--min-bkg-events", "1"])
    message = str(exit_info.value.code)
    assert message.startswith(f"evaluate.py: error: {path}: sample qcd: branch {expected}"), message
    assert "\n" not in message and not (tmp_path / "out").exists()
    if branch == "acceptance" and np.isfinite(value):
        assert "--events-per-file" in message  # a chunk of signed weights summing to <= 0: the fix


def test_a_nan_acceptance_is_no_traceback(tmp_path):
    result = run_cli(unnormalisable(tmp_path, "acceptance", np.nan), "--outdir", tmp_path / "out")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "bad_acceptance.root" in result.stderr


@pytest.mark.parametrize("present", [QCD, HH4B])
def test_a_prediction_of_one_class_is_one_line(tmp_path, present):
    """A test sample without signal (a background file in place of the signal's) or without background."""
    path = write_prediction(tmp_path / "one_class.root", [0.9, 0.5, 0.2], [present] * 3)
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main([str(path), "--outdir", str(tmp_path / "out")])
    message = str(exit_info.value.code)
    found = "0 signal and 3 background" if present == QCD else "3 signal and 0 background"
    assert f"{path}: needs signal and background events, found {found}" in message and "\n" not in message
    assert not (tmp_path / "out").exists()


def test_one_file_given_twice_is_refused(tmp_path):
    """Two names for one file are not two trainings: the spread would come out 0."""
    path = hand_case(tmp_path)
    again = f"{tmp_path}/./{path.name}"  # another spelling of the same file
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main([str(path), again, "--names", "m", "m", "--outdir", str(tmp_path / "out")])
    assert f"{again} is given twice" in str(exit_info.value.code)
    assert not (tmp_path / "out").exists()
