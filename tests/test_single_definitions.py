"""Facts written once and read everywhere else: the N_eff floor, the cut-based defaults, the b-tag classes and
the tag count, the pinned versions. Each test fails when a second copy appears and drifts from the first."""

import inspect
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from multiscale.evaluation import cutbased, limits, metrics, smooth_background, stitching, summary
from multiscale.evaluation.cli import evaluate_parser
from multiscale.evaluation.cutbased import CutBasedSelection
from multiscale.evaluation.io import Prediction
from multiscale.evaluation.metrics import MIN_BACKGROUND_EVENTS
from multiscale.evaluation.yields import tag_class_of, tag_count
from multiscale.generation.btagging import FLAVOUR_B, FLAVOUR_C, FLAVOUR_LIGHT, TagEfficiencies
from multiscale.generation.truth_tagging import CONFIGS, FLAVOUR_BRANCHES, SUBJET_SLOTS, expand
from multiscale.schema import MAX_TAGS, N_OBJECTS, PROCESS_CODES, TAG_CLASSES

REPO = Path(__file__).resolve().parents[1]
FLOOR_MODULES = (metrics, limits, cutbased, stitching, smooth_background, summary)


# --- the N_eff floor: one name, one default ------------------------------------------------------------------


def floor_parameters():
    """(function, parameter) of every parameter of the evaluation's functions named like an N_eff floor."""
    for module in FLOOR_MODULES:
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ != module.__name__:
                continue
            for parameter in inspect.signature(function).parameters.values():
                if re.fullmatch(r"min_\w*events", parameter.name):
                    yield f"{module.__name__}.{name}", parameter


def test_the_n_eff_floor_has_one_name_and_one_default():
    found = list(floor_parameters())
    assert len(found) > 10  # the floor is everywhere: the scan must see it
    for function, parameter in found:
        if parameter.kind is parameter.KEYWORD_ONLY and parameter.default is None:
            continue  # a deprecated alias that only renames (cutbased.cut_based_histograms)
        assert parameter.name == "min_background_events", function
        if parameter.default is not parameter.empty:
            assert parameter.default == MIN_BACKGROUND_EVENTS, function


def test_the_evaluate_command_defaults_to_the_library_floor_and_keeps_the_old_option():
    parser = evaluate_parser()
    assert parser.parse_args(["p.root", "--outdir", "o"]).min_background_events == MIN_BACKGROUND_EVENTS
    assert parser.parse_args(["p.root", "--outdir", "o", "--min-bkg-events", "3"]).min_background_events == 3
    assert parser.parse_args(["p.root", "--outdir", "o", "--min-background-events", "4"]).min_background_events == 4


def test_the_floor_of_the_cut_based_histograms_is_the_evaluations():
    prediction = toy_prediction(40)
    selection = CutBasedSelection(sdmass_window=(0.0, 1e9), min_btags=0, mjj_window=(0.0, 10.0))
    raised = cutbased.cut_based_histograms(prediction, selection, 1.0, min_background_events=1e9)
    default = cutbased.cut_based_histograms(prediction, selection, 1.0)
    assert raised["low_statistics"] and not default["low_statistics"]


# --- the cut-based defaults: the selection's own ---------------------------------------------------------------


def test_the_evaluate_command_defaults_to_the_default_cut_based_selection():
    args = evaluate_parser().parse_args(["p.root", "--outdir", "o"])
    from_command_line = CutBasedSelection(mH=args.mH, sdmass_window=tuple(args.cut_sdmass), min_btags=args.cut_btags,
                                          mjj_window=tuple(args.cut_mjj))
    assert from_command_line == CutBasedSelection()


# --- the tag classes and the tag count --------------------------------------------------------------------------


def toy_columns(n, seed=0):
    """Truth-tagging input: random subjet flavours, every subjet present."""
    rng = np.random.default_rng(seed)
    flavour = rng.choice([FLAVOUR_LIGHT, FLAVOUR_C, FLAVOUR_B], size=(n, len(FLAVOUR_BRANCHES)), p=[0.4, 0.2, 0.4])
    columns = {name: flavour[:, j].astype(np.int32) for j, name in enumerate(FLAVOUR_BRANCHES)}
    for branch in ("obj_mask", "obj_btag", "obj_pt"):
        columns[branch] = ak.from_regular(np.ones((n, N_OBJECTS), dtype=np.float32), axis=1)
    columns["weight"] = np.ones(n)
    columns["event_id"] = np.arange(n)
    return columns


def test_the_tag_classes_cover_every_tag_count_once():
    counts = sorted(k for tag_class in TAG_CLASSES for k in tag_class)
    assert counts == list(range(MAX_TAGS + 1)) == list(range(CONFIGS.shape[1] + 1))
    assert MAX_TAGS == len(SUBJET_SLOTS)
    for index, tag_class in enumerate(TAG_CLASSES):
        assert np.all(tag_class_of(np.array(tag_class)) == index)


def test_truth_tagging_writes_the_tag_counts_and_classes_that_the_evaluation_reads():
    out = expand(toy_columns(300), "test", TagEfficiencies(), np.random.default_rng(1))
    tags = tag_count(out)
    assert np.array_equal(tags, np.asarray(out["fj1_nbtag"]) + np.asarray(out["fj2_nbtag"]))
    assert np.array_equal(tag_class_of(tags), out["tag_class"])
    assert set(np.unique(out["tag_class"])) == set(range(len(TAG_CLASSES)))  # the toy reaches every class
    btag = ak.to_numpy(out["obj_btag"])[:, SUBJET_SLOTS]
    assert np.array_equal(tags, btag.sum(axis=1))  # the tag count is the number of tagged subjets


def toy_prediction(n, seed=2):
    """Events (a quarter signal) with fat jets inside any window and random tag counts."""
    rng = np.random.default_rng(seed)
    arrays = {"fj1_nbtag": rng.integers(0, 3, n), "fj2_nbtag": rng.integers(0, 3, n),
              "fj1_pt": rng.uniform(300.0, 700.0, n), "fj2_pt": rng.uniform(300.0, 700.0, n),
              "fj1_eta": np.zeros(n), "fj2_eta": np.zeros(n), "fj1_phi": np.zeros(n), "fj2_phi": np.full(n, np.pi),
              "fj1_mass": np.full(n, 125.0), "fj2_mass": np.full(n, 125.0),
              "fj1_sdmass": np.full(n, 125.0), "fj2_sdmass": np.full(n, 125.0),
              "process": np.where(np.arange(n) < n // 4, PROCESS_CODES["hh4b"], PROCESS_CODES["qcd"]),
              "weight": np.ones(n), "xsec_fb": np.ones(n),
              "acceptance": np.ones(n), "is_signal": (np.arange(n) < n // 4).astype(np.int32),
              "score_is_signal": rng.random(n)}
    return Prediction(path="toy.root", arrays=arrays)


def test_the_cut_based_selection_and_the_stitching_bins_count_tags_as_the_branches_do():
    prediction = toy_prediction(200)
    tags = prediction.arrays["fj1_nbtag"] + prediction.arrays["fj2_nbtag"]
    for k in range(MAX_TAGS + 1):
        selection = CutBasedSelection(sdmass_window=(0.0, 1e9), min_btags=k, mjj_window=(0.0, 10.0))
        assert np.array_equal(cutbased.select(prediction.arrays, selection), tags >= k)
    bins, _ = stitching.bin_of(prediction)
    expected_class = np.array([next(c for c, counts in enumerate(TAG_CLASSES) if t in counts) for t in tags])
    assert np.array_equal(bins % len(TAG_CLASSES), expected_class)


# --- the pinned versions: pyproject.toml, read by the scripts ----------------------------------------------------

PINNED = REPO / "tools" / "pinned.py"
SCRIPTS = ("env.sh", "tools/gpu_env.sh", "benchmarks/benchmark_gpu.sh")


def project_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    return [r for r in requirements if "==" in r]


def pinned(*names):
    return subprocess.run([sys.executable, str(PINNED), *names], capture_output=True, text=True)


def test_pinned_prints_every_pin_of_pyproject():
    pins = project_pins()
    assert any(pin.startswith("torch==") for pin in pins)
    names = [pin.split("==")[0] for pin in pins]
    result = pinned(*names)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == pins


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_scripts_write_no_version_of_their_own(script):
    text = (REPO / script).read_text()
    assert not re.findall(r"[A-Za-z][\w.-]*==\d", text), f"{script} pins a version: read it with tools/pinned.py"


def test_pinned_names_a_package_it_cannot_pin():
    result = pinned("no-such-package-xyz")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "no-such-package-xyz" in result.stderr


def test_a_cut_scan_below_the_floor_says_how_far_below():
    """No working point keeps the floor: the note gives the most any keeps, the floor at which one would qualify."""
    prediction = toy_prediction(400)
    starved = cutbased.best_selection(prediction, 1.0, 1000.0, min_background_events=1e6)
    most = starved["most_background_events"]
    assert starved["selection"] is None and f"the most any keeps: {most:.3g}" in starved["note"]
    assert 0 < most <= prediction.n_background
    assert cutbased.best_selection(prediction, 1.0, 1000.0, min_background_events=most)["selection"] is not None
    assert cutbased.best_selection(prediction, 1.0, 1000.0, min_background_events=most * 1.001)["selection"] is None
