"""train_multiscale.sh's inputs: the files it trains on (explicit lists, or every file of the data directory, named),
a training without one of its classes refused before weaver runs, and two trainings with one seed the same bit
for bit."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import uproot

from multiscale.check_inputs import needed_branches
from multiscale.weaver_io import load_data_config

REPO = Path(__file__).resolve().parents[1]

# a weaver that records its arguments (a shell function wins over the venv's weaver)
FAKE_WEAVER = r"""
import sys
from pathlib import Path
args = sys.argv[1:]
Path(args[args.index("--log") + 1] + ".args").write_text("\n".join(args))
"""


def write_events(path, n, signal, seed=0):
    """A file with every branch data/kin.yaml needs, random values, one class: signal or background."""
    branches = sorted(needed_branches(load_data_config(REPO / "data" / "kin.yaml")))
    rng = np.random.default_rng(seed)
    columns = {b: rng.normal(size=n).astype(np.float32) for b in branches}
    columns.update(is_signal=np.full(n, signal, np.float32), is_background=np.full(n, not signal, np.float32))
    path.parent.mkdir(parents=True, exist_ok=True)
    with uproot.recreate(path) as f:
        f.mktree("Events", {b: np.float32 for b in branches})
        f["Events"].extend(columns)


def driver(tmp_path, *args, fake=True, env=None):
    environment = {**os.environ, "DATADIR_hh4b": str(tmp_path / "data"), "MS_OUTDIR": str(tmp_path / "training"),
                   **(env or {})}
    environment.pop("DDP_NGPUS", None)
    if fake:
        script = tmp_path / "fake_weaver.py"
        script.write_text(FAKE_WEAVER)
        environment["BASH_FUNC_weaver%%"] = f'() {{ python "{script}" "$@"; }}'
    return subprocess.run([str(REPO / "train_multiscale.sh"), "kin", *args], env=environment, capture_output=True,
                          text=True, timeout=600)


def weaver_files(tmp_path, option):
    """The files the (fake) weaver was handed after ``option``."""
    args = (tmp_path / "training" / "kin_full" / "train.log.args").read_text().splitlines()
    start = args.index(option) + 1
    end = next((i for i in range(start, len(args)) if args[i].startswith("-")), len(args))
    return [Path(f).name for f in args[start:end]]


@pytest.fixture
def data(tmp_path):
    for name, signal in (("hh4b_0", True), ("qcd_0", False), ("ttbar_0", False), ("wjets_0", False)):
        write_events(tmp_path / "data" / "train" / f"{name}.root", 8, signal)
    write_events(tmp_path / "data" / "test" / "other_0.root", 8, False)
    return tmp_path / "data"


@pytest.mark.slow
def test_every_file_of_the_data_directory_is_trained_on_and_named(tmp_path, data):
    """A fourth background (wjets) beside hh4b, qcd and ttbar is trained on, not left out for its name."""
    result = driver(tmp_path, "--num-epochs", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert weaver_files(tmp_path, "--data-train") == ["hh4b_0.root", "qcd_0.root", "ttbar_0.root", "wjets_0.root"]
    assert weaver_files(tmp_path, "--data-test") == ["other_0.root"]
    assert f"train files: every file of {data}/train (4: hh4b_0.root qcd_0.root ttbar_0.root wjets_0.root)" in result.stderr


@pytest.mark.slow
def test_explicit_file_lists_are_used_as_given(tmp_path, data):
    train = [str(data / "train" / name) for name in ("hh4b_0.root", "wjets_0.root")]
    result = driver(tmp_path, "--data-train", *train, "--num-epochs", "1", f"--data-test={data}/train/qcd_0.root")
    assert result.returncode == 0, result.stderr[-2000:]
    assert weaver_files(tmp_path, "--data-train") == ["hh4b_0.root", "wjets_0.root"]
    assert weaver_files(tmp_path, "--data-test") == ["qcd_0.root"]
    assert "every file of" not in result.stderr


@pytest.mark.slow
def test_a_training_without_signal_events_stops_before_weaver(tmp_path, data):
    """A background file handed over as the signal: one line naming the files, weaver never runs."""
    train = [str(data / "train" / name) for name in ("qcd_0.root", "wjets_0.root")]
    result = driver(tmp_path, "--data-train", *train, "--num-epochs", "1")
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert result.returncode == 1 and len(errors) == 1, result.stderr[-2000:]
    assert "no is_signal event in the 2 training file(s)" in errors[0] and train[0] in errors[0] and train[1] in errors[0]
    assert not (tmp_path / "training" / "kin_full" / "train.log.args").exists()


@pytest.mark.integration
def test_two_trainings_with_one_seed_give_the_same_predictions(tmp_path):
    """The real weaver twice with -o seed 1 (in memory, as the workflow trains): the same predictions, bit for bit
    (weaver's numpy shuffles and its file groups' order were left to chance before)."""
    for split, seed in (("train", 1), ("test", 2)):
        write_events(tmp_path / "data" / split / "hh4b_0.root", 64, True, seed)
        write_events(tmp_path / "data" / split / "qcd_0.root", 64, False, seed + 10)
    predictions = []
    for run in ("first", "second"):
        result = driver(tmp_path, "-o", "seed", "1", "--num-epochs", "1", "--batch-size", "16", "--in-memory",
                        "--steps-per-epoch", "4", "--num-workers", "0", "--optimizer", "adamw", fake=False,
                        env={"MS_OUTDIR": str(tmp_path / run), "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-3000:]
        with uproot.open(tmp_path / run / "kin_full" / "pred.root") as f:
            predictions.append(f["Events"].arrays(library="np"))
    first, second = predictions
    assert first.keys() == second.keys() and len(first["score_is_signal"]) == 128
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
