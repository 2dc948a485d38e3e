"""A weaver user's own dataset, not in this project's schema (50 constituents x 7 features, labels
label_sig / label_bkg, a ParT-style data config with pf_points: tests/data/part_style.yaml), through
every tool: input check, training, prediction, ONNX export and onnxruntime prediction, evaluation,
comparison and the interpretability tools. The events are synthetic (unit-test data): two-prong
"signal" jets against one-prong "background" jets."""

import json
import os
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np

import pytest
import uproot

from multiscale.check_inputs import main as check_inputs_main
from multiscale.evaluation.cli import compare_main, evaluate_main
from multiscale.interpret.cli import attention_main, gradcam_main

REPO_ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.integration

CONFIG = REPO_ROOT / "tests" / "data" / "part_style.yaml"
NETWORK = REPO_ROOT / "networks" / "multiscale_cross.py"
N_MAX = 50


def run(cmd, check=True):
    result = subprocess.run([str(c) for c in cmd], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def write_jets(path, n_events, seed):
    """Jets of 10-50 constituents around the axis; signal jets hold two separated prongs."""
    rng = np.random.default_rng(seed)
    is_signal = rng.random(n_events) < 0.5
    counts = rng.integers(10, N_MAX + 1, n_events)
    n = int(counts.sum())
    event_signal = np.repeat(is_signal, counts)
    prong = np.where(event_signal, rng.choice([-0.15, 0.15], n), 0.0)
    deta = prong + rng.normal(0, 0.05, n)
    dphi = rng.normal(0, 0.05, n) + np.where(event_signal, 0.1 * np.sign(prong), 0.0)
    pt = rng.exponential(20.0, n) + 1.0
    jet_eta, jet_phi = np.repeat(rng.normal(0, 1, n_events), counts), np.repeat(rng.uniform(-3, 3, n_events), counts)
    eta, phi = jet_eta + deta, jet_phi + dphi
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = np.sqrt(px**2 + py**2 + pz**2)
    # zipped under "part": uproot writes the branches part_px, ... with one counter npart
    jagged = {name: ak.unflatten(values.astype(np.float32), counts)
              for name, values in (("px", px), ("py", py), ("pz", pz), ("energy", energy), ("deta", deta),
                                   ("dphi", dphi))}
    sum_px, sum_py = ak.sum(jagged["px"], axis=1), ak.sum(jagged["py"], axis=1)
    columns = {
        "part": ak.zip(jagged),
        "jet_pt": ak.to_numpy(np.hypot(sum_px, sum_py)).astype(np.float32),
        "jet_eta": ak.to_numpy(jet_eta[np.cumsum(counts) - 1]).astype(np.float32),
        "jet_energy": ak.to_numpy(ak.sum(jagged["energy"], axis=1)).astype(np.float32),
        "label_sig": is_signal, "label_bkg": ~is_signal,
    }
    with uproot.recreate(path) as f:
        f.mktree("Events", {"part": columns["part"].type, **{k: v.dtype for k, v in columns.items() if k != "part"}})
        f["Events"].extend(columns)
    return path


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    root = tmp_path_factory.mktemp("foreign")
    for split in ("train", "test"):
        (root / split).mkdir()
    for i in range(2):
        write_jets(root / "train" / f"jets_{i}.root", 400, seed=i)
    write_jets(root / "test" / "jets_0.root", 200, seed=10)
    return root


def test_foreign_dataset_through_every_tool(foreign, tmp_path, capsys):
    train, test = sorted((foreign / "train").glob("*.root")), [foreign / "test" / "jets_0.root"]
    # the project's tools run in this process (tools/*.py only call these mains: a subprocess each would cost
    # seconds of torch imports); weaver's commands run as the README gives them
    assert check_inputs_main([str(f) for f in (CONFIG, *train, *test)]) == 0
    model = tmp_path / "net"
    # the README's command, with this config: nothing in it names this project's schema
    common = [sys.executable, "-m", "weaver.train", "--data-config", CONFIG, "--network-config", NETWORK, "--gpus", ""]
    log = run([*common, "--data-train", *train, "--data-test", *test, "--model-prefix", model,
               "--num-epochs", "1", "--batch-size", "32", "--in-memory", "--fetch-step", "1", "--steps-per-epoch", "12",
               "--num-workers", "0", "--optimizer", "adamw", "--start-lr", "3e-3",
               "--predict-output", tmp_path / "pred.root", "--log", tmp_path / "train.log"])
    assert "input group 'pf_points'" in (tmp_path / "train.log").read_text()
    weights = f"{model}_best_epoch_state.pt"
    run([*common, "--model-prefix", weights, "--export-onnx", tmp_path / "model.onnx"])
    run([*common, "--predict", "--data-test", *test, "--model-prefix", tmp_path / "model.onnx",
         "--predict-output", tmp_path / "pred_onnx.root", "--num-workers", "0"])
    capsys.readouterr()
    assert compare_main([str(tmp_path / "pred.root"), str(tmp_path / "pred_onnx.root")]) == 0
    compared = capsys.readouterr().out
    assert "by entry order" in compared and "NaN in candidate: 0" in compared

    assert evaluate_main([str(tmp_path / "pred.root"), "--signal", "label_sig", "--outdir", str(tmp_path / "eval"),
                          "--names", "foreign"]) == 0
    evaluated = capsys.readouterr().err
    assert "skipped expected yields" in evaluated and "skipped cut-based reference" in evaluated
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["models"]["foreign"]["auc"]["mean"] > 0.7  # two prongs against one: learnt in 12 steps
    assert (tmp_path / "eval" / "roc.png").is_file()

    interpret = [str(a) for a in ("-c", CONFIG, "-m", weights, "--files", *test, "--events", "40",
                                  "--signal-label", "label_sig", "--custom-functions", "")]
    assert attention_main([*interpret, "--outdir", str(tmp_path / "attention")]) == 0
    assert gradcam_main([*interpret, "--outdir", str(tmp_path / "gradcam")]) == 0
    assert list((tmp_path / "attention").glob("*.png")) and list((tmp_path / "gradcam").glob("*.png"))
