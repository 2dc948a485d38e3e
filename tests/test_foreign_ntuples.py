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
    write_jets(root / "test" / "jets_0.root", 300, seed=10)
    return root


def test_foreign_dataset_through_every_tool(foreign, tmp_path):
    train, test = sorted((foreign / "train").glob("*.root")), [foreign / "test" / "jets_0.root"]
    run([sys.executable, "-m", "multiscale.check_inputs", CONFIG, *train, *test])
    model = tmp_path / "net"
    # the README's command, with this config: nothing in it names this project's schema
    common = [sys.executable, "-m", "weaver.train", "--data-config", CONFIG, "--network-config", NETWORK, "--gpus", ""]
    log = run([*common, "--data-train", *train, "--data-test", *test, "--model-prefix", model,
               "--num-epochs", "2", "--batch-size", "32", "--in-memory", "--fetch-step", "1", "--steps-per-epoch", "20",
               "--num-workers", "0", "--optimizer", "adamw", "--start-lr", "3e-3",
               "--predict-output", tmp_path / "pred.root", "--log", tmp_path / "train.log"])
    assert "input group 'pf_points'" in (tmp_path / "train.log").read_text()
    weights = f"{model}_best_epoch_state.pt"
    run([*common, "--model-prefix", weights, "--export-onnx", tmp_path / "model.onnx"])
    run([*common, "--predict", "--data-test", *test, "--model-prefix", tmp_path / "model.onnx",
         "--predict-output", tmp_path / "pred_onnx.root", "--num-workers", "0"])
    compared = run([sys.executable, "tools/compare_predictions.py", tmp_path / "pred.root", tmp_path / "pred_onnx.root"])
    assert "by entry order" in compared.stdout and "NaN in candidate: 0" in compared.stdout

    evaluated = run([sys.executable, "tools/evaluate.py", tmp_path / "pred.root", "--signal", "label_sig",
                     "--outdir", tmp_path / "eval", "--names", "foreign"])
    assert "skipped expected yields" in evaluated.stderr and "skipped cut-based reference" in evaluated.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["models"]["foreign"]["auc"]["mean"] > 0.7  # two prongs against one: learnt in 40 steps
    assert (tmp_path / "eval" / "roc.png").is_file()

    interpret = ["-c", CONFIG, "-m", weights, "--files", *test, "--events", "40", "--signal-label", "label_sig",
                 "--custom-functions", ""]
    run([sys.executable, "tools/attention_maps.py", *interpret, "--outdir", tmp_path / "attention"])
    run([sys.executable, "tools/gradcam.py", *interpret, "--outdir", tmp_path / "gradcam"])
    assert list((tmp_path / "attention").glob("*.png")) and list((tmp_path / "gradcam").glob("*.png"))
