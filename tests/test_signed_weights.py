"""NLO samples: signed event weights keep their sign through the generator, the truth tagging, the
yields, ROC, AUC, N_eff and the limits; training copies say what they do with them (|w|).

The negative weights are real: aMC@NLO's FxFx Z + jets file (tests/data, IDWTUP = -4, 19% of its
events negative), showered by the merged_runs fixture (conftest.py). HepMC3: Pythia's own events
written with a negative first weight for every fourth event (constructed: no NLO HepMC3 file is at hand).
"""

import json

import numpy as np
import pytest
import uproot

from multiscale.check_inputs import check_files
from multiscale.evaluation import read_prediction
from multiscale.evaluation.cli import evaluate_main
from multiscale.evaluation.limits import classifier_limit, score_histograms
from multiscale.evaluation.yields import background_statistics, expected_yields, yield_weights
from multiscale.generation import cli
from multiscale.generation.truth_tagging import unweight, unweighting_reference
from test_evaluate import HH4B, QCD, write_prediction
from test_external_inputs import CONFIG, _pythia_to_hepmc, sidecar
from tests.helpers import generate


def fxfx_weights(merged_runs):
    return uproot.open(merged_runs["fxfx"] / "qcd_1_0.root")["Events"]["weight"].array(library="np")


@pytest.mark.slow
def test_generator_keeps_the_sign_and_normalises_to_the_signed_sum(merged_runs):
    meta = json.loads((merged_runs["fxfx"] / "qcd_1_0.json").read_text())
    weight = fxfx_weights(merged_runs)
    negative = weight < 0
    assert negative.sum() == meta["n_negative_weights"] > 0
    # aMC@NLO events weigh +-the same: one magnitude, both signs
    np.testing.assert_allclose(np.abs(weight), np.abs(weight[0]), rtol=1e-9)
    assert weight.sum() == pytest.approx(meta["xsec_fb"] * meta["acceptance"], rel=1e-9)
    # N_eff of signed weights: (sum w)^2 / sum w^2 = n (1 - 2 f)^2, well below the event count
    f = negative.mean()
    assert meta["n_effective"] == pytest.approx(len(weight) * (1 - 2 * f) ** 2, rel=1e-9)


@pytest.mark.slow
def test_hepmc_weights_keep_their_sign(tmp_path):
    builtin = tmp_path / "builtin"
    generate("--process", "hh4b", "--events", "12", "--seed", "5", "--outdir", builtin)
    meta = sidecar(builtin)
    original = tmp_path / "hh4b.hepmc3"
    _pythia_to_hepmc(original, meta["pythia_seed"], meta["n_generated"])
    signed = tmp_path / "signed.hepmc3"
    import pyhepmc

    n_negative = 0
    with pyhepmc.open(original) as reader, pyhepmc.open(signed, "w") as writer:
        for number, event in enumerate(reader):
            negative = number % 4 == 3
            n_negative += negative
            event.weights = [-1.0 if negative else 1.0]
            writer.write(event)
    # two ranges of the file, two chunks (read from slices of it)
    half = (meta["n_generated"] + 1) // 2
    generate("--process", "hh4b", "--hepmc", signed, "--seed", "5", "--events-per-file", half,
             "--outdir", tmp_path / "out")
    for chunk in range(2):
        out = json.loads((tmp_path / "out" / f"hh4b_mH1000_5_{chunk}.json").read_text())
        weight = uproot.open(tmp_path / "out" / f"hh4b_mH1000_5_{chunk}.root")["Events"]["weight"].array(library="np")
        start, stop = out["source"]["event_range"]
        negative = sum(number % 4 == 3 for number in range(start, stop))
        assert out["source"]["n_negative_weights"] == n_negative > 0 and out["n_negative_weights"] == (weight < 0).sum()
        # each event: xsec x (+-1) / signed sum of the range's weights
        np.testing.assert_allclose(np.abs(weight), out["xsec_fb"] / (stop - start - 2 * negative), rtol=1e-9)


@pytest.mark.slow
def test_truth_tag_training_copies_train_on_abs_w_and_keep_the_sign(merged_runs, tmp_path, capsys):
    source = merged_runs["fxfx"] / "qcd_1_0.root"
    n_negative = int((fxfx_weights(merged_runs) < 0).sum())
    for mode in ("train", "test"):
        assert cli.truth_tag_main([str(source), "--outdir", str(tmp_path / mode), "--mode", mode]) == 0
    said = capsys.readouterr().out
    assert f"{n_negative} of " in said and "weaver trains on |w|" in said and "each copy keeps its sign" in said
    train = uproot.open(tmp_path / "train" / source.name)["Events"]["weight"].array(library="np")
    # +-equal magnitudes: every event is kept, the negative ones as negative (they used to be dropped)
    assert len(train) == len(fxfx_weights(merged_runs)) and (train < 0).sum() == n_negative
    test = uproot.open(tmp_path / "test" / source.name)["Events"]["weight"].array(library="np")
    assert test.sum() == pytest.approx(fxfx_weights(merged_runs).sum(), rel=1e-9)  # copies x P(class), signed


@pytest.mark.slow
def test_the_training_driver_says_what_weaver_does_with_negative_weights(merged_runs):
    """check_inputs runs before every training (train_multiscale.sh)."""
    said = []
    check_files(str(CONFIG), [str(merged_runs["fxfx"] / "qcd_1_0.root")], warn=said.append)
    n_negative = int((fxfx_weights(merged_runs) < 0).sum())
    assert [line for line in said if f"{n_negative} of " in line and "negative weight" in line and "|w|" in line]


def test_unweighting_signed_weights_is_unbiased():
    rng = np.random.default_rng(3)
    weight = rng.exponential(1.0, 200_000) * np.where(rng.random(200_000) < 0.25, -1.0, 1.0)
    kept, new = unweight(weight, rng, unweighting_reference(weight))
    assert np.all(np.sign(new) == np.sign(weight[kept]))
    assert (weight[kept] < 0).mean() == pytest.approx(0.25, abs=0.01)  # kept in proportion to |w|
    assert new.sum() == pytest.approx(weight.sum(), rel=0.02)  # the yield is kept, sign included


def weighted_auc(is_signal, score, weight):
    """The weighted Mann-Whitney statistic: P(signal scores above background), ties count half."""
    s, b = score[is_signal], score[~is_signal]
    ws, wb = weight[is_signal], weight[~is_signal]
    above = (s[:, None] > b[None, :]) + 0.5 * (s[:, None] == b[None, :])
    return float((ws[:, None] * wb[None, :] * above).sum() / (ws.sum() * wb.sum()))


@pytest.mark.slow
def test_evaluation_of_a_signed_background(merged_runs, tmp_path):
    """A prediction whose background carries the FxFx sample's weights (signed): the evaluation used to
    stop in sklearn ('x is neither increasing nor decreasing'); now every figure keeps the sign."""
    background = fxfx_weights(merged_runs)
    rng = np.random.default_rng(7)
    n_signal = 300
    process = np.r_[np.full(n_signal, HH4B), np.full(len(background), QCD)]
    score = np.r_[rng.beta(4, 2, n_signal), rng.beta(2, 3, len(background))]
    weight = np.r_[np.full(n_signal, 0.01), background]
    xsec = np.where(process == HH4B, 3.0, background.sum())
    path = write_prediction(tmp_path / "signed.root", score, process, xsec_fb=xsec, weight=weight)
    evaluate_main([str(path), "--outdir", str(tmp_path / "out"), "--lumi", "100"])
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    (training,) = metrics["models"]["signed"]["per_training"]

    prediction = read_prediction(path)
    yields = yield_weights(prediction, 100.0)
    is_signal = prediction.is_signal
    assert np.all(np.sign(yields[~is_signal]) == np.sign(background))
    assert training["auc"] == pytest.approx(weighted_auc(is_signal, prediction.score, yields), rel=1e-9)
    assert training["auc"] != pytest.approx(weighted_auc(is_signal, prediction.score, np.abs(yields)), rel=1e-3)
    cut = prediction.score > 0.6
    s, b = expected_yields(prediction, 100.0, cut)
    assert b == pytest.approx(yields[~is_signal & cut].sum(), rel=1e-9)
    stats = background_statistics(prediction, 100.0, cut)
    y = yields[~is_signal & cut]
    assert stats["effective_events"] == pytest.approx(y.sum() ** 2 / np.square(y).sum(), rel=1e-9)
    assert stats["effective_events"] < 0.8 * len(y)  # the negative events cost statistics
    histograms = score_histograms(prediction, 100.0)
    edges = np.asarray(histograms["edges"])
    index = np.clip(np.searchsorted(edges[1:-1], prediction.score, side="right"), 0, len(edges) - 2)
    expected = np.bincount(index[~is_signal], weights=yields[~is_signal], minlength=len(edges) - 1)
    np.testing.assert_allclose(histograms["background"], expected, rtol=1e-9)  # signed sums per bin
    limit = classifier_limit(prediction, 100.0)
    assert limit["mu_up"] is None or limit["mu_up"] > 0


def test_a_chunk_whose_signed_weights_sum_to_no_cross_section_is_refused_downstream(tmp_path):
    """The FxFx file's first 15 events as one chunk: its signed weights sum to < 0 (acceptance -0.5, every
    weight's sign flipped by the normalisation). Truth tagging wrote its copies and the evaluation gave B < 0
    with exit 0; both now stop with one line naming the file, the branch and the fix."""
    from conftest import FXFX_FILE, Z_THRESHOLDS
    from test_generator import run_generator

    result = run_generator("--process", "qcd", "--lhe", FXFX_FILE, "--merging-scale", "20", "--events", "15",
                           "--events-per-file", "15", *Z_THRESHOLDS, "--outdir", tmp_path / "gen", check=False)
    if result.returncode != 0:  # the generator may say it first: then in one line with the fix
        assert "--events-per-file" in result.stderr and "Traceback" not in result.stderr
        return
    (chunk,) = (tmp_path / "gen").glob("qcd_*_0.root")
    events = uproot.open(chunk)["Events"].arrays(["weight", "acceptance", "xsec_fb"], library="np")
    assert events["weight"].sum() < 0 and np.all(events["acceptance"] < 0)  # the case itself

    for mode in ("test", "train"):
        with pytest.raises(SystemExit) as exit_info:
            cli.truth_tag_main(["--mode", mode, "--outdir", str(tmp_path / mode), str(chunk)])
        message = str(exit_info.value.code)
        assert f"{chunk}: branch 'acceptance' is" in message and "--events-per-file" in message
        assert not (tmp_path / mode).exists()

    n = len(events["weight"])
    process = np.r_[np.full(n, HH4B), np.full(n, QCD)]
    path = write_prediction(tmp_path / "pred.root", np.linspace(0, 1, 2 * n), process,
                            xsec_fb=np.r_[np.full(n, 3.0), events["xsec_fb"]],
                            acceptance=np.r_[np.ones(n), events["acceptance"]],
                            weight=np.r_[np.full(n, 0.01), events["weight"]])
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main([str(path), "--outdir", str(tmp_path / "out")])
    assert f"{path}: sample qcd: branch 'acceptance' is -0.5 (<= 0)" in str(exit_info.value.code)
    assert not (tmp_path / "out").exists()
