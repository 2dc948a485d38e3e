"""The real chain on generated events: Pythia files -> weaver train -> --predict -> --export-onnx
-> onnxruntime through weaver's prediction loop; every model of train_multiscale.sh; 2-process
DDP on CPU; clear errors for wrong usage and missing branches."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

import pytest
import uproot

from multiscale.check_inputs import InputError, check_files
from multiscale.check_inputs import main as check_inputs_main
from multiscale.evaluation.cli import compare_main
from multiscale.generation.writer import write_root

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration

SHORT_TRAINING = ["--num-epochs", "1", "--batch-size", "16", "--in-memory", "--steps-per-epoch", "3",
                  "--num-workers", "0", "--optimizer", "adamw"]
# the test split: the first events of one file per process, enough for every process in a prediction of
# more than 100 events (the 750 generated events took cross twice as long to predict as its 3 training steps)
TEST_EVENTS_PER_PROCESS = 50


def run(cmd, env=None, check=True, timeout=600):
    result = subprocess.run(cmd, cwd=REPO_ROOT, env={**os.environ, **(env or {})}, capture_output=True,
                            text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def write_first_events(source, path, n_events):
    """The first ``n_events`` of a generated file, written as the generator writes its files."""
    with uproot.open(source) as f:
        tree = f["Events"]
        counters = {b.count_branch.name for b in tree.branches if b.count_branch is not None}
        arrays = tree.arrays([name for name in tree.keys() if name not in counters], entry_stop=n_events)
    write_root(path, {name: arrays[name] for name in arrays.fields})


@pytest.fixture(scope="module")
def dataset(generated_dir, tmp_path_factory):
    """The layout train_multiscale.sh expects: DATADIR_hh4b/{train,test}/<process>_*.root; every generated
    file in train, the first TEST_EVENTS_PER_PROCESS events of each process in test."""
    root = tmp_path_factory.mktemp("hh4b")
    for split in ("train", "test"):
        (root / split).mkdir()
    for f in sorted(generated_dir.glob("*.root")):
        os.symlink(f, root / "train" / f.name)
    for f in sorted(generated_dir.glob("*_0.root")):  # the first file of each process
        write_first_events(f, root / "test" / f.name, TEST_EVENTS_PER_PROCESS)
    return root


@pytest.fixture(scope="module")
def env(dataset, tmp_path_factory):
    return {"DATADIR_hh4b": str(dataset), "MS_OUTDIR": str(tmp_path_factory.mktemp("training"))}


def read_prediction(path):
    with uproot.open(path) as f:
        return f["Events"].arrays(library="np")


@pytest.mark.parametrize("model", ["cross", "concat", "jets", "kin", "cross3"])
def test_every_model_trains_and_predicts(env, model):
    run(["./train_multiscale.sh", model, *SHORT_TRAINING], env)
    pred = read_prediction(os.path.join(env["MS_OUTDIR"], f"{model}_full", "pred.root"))
    for branch in ("score_is_signal", "score_is_background", "is_signal", "_label_", "process", "weight", "fj1_sdmass"):
        assert branch in pred, branch
    assert len(pred["score_is_signal"]) > 100
    np.testing.assert_allclose(pred["score_is_signal"] + pred["score_is_background"], 1, atol=1e-5)
    assert set(np.unique(pred["process"])) == {0, 1, 2}


def test_predict_export_and_onnxruntime_agree(env, capsys):
    rundir = os.path.join(env["MS_OUTDIR"], "cross_paper")
    run(["./train_multiscale.sh", "cross", "paper", *SHORT_TRAINING], env)
    run(["./train_multiscale.sh", "predict", "cross", "paper", "--num-workers", "0"], env)
    run(["./train_multiscale.sh", "export", "cross", "paper"], env)
    assert os.path.isfile(os.path.join(rundir, "model.onnx"))
    assert os.path.isfile(os.path.join(rundir, "preprocess.json"))
    # weaver feeds the test files' inputs to onnxruntime; compare event by event with PyTorch
    run(["./train_multiscale.sh", "predict", "cross", "paper", "--model-prefix", f"{rundir}/model.onnx",
         "--predict-output", f"{rundir}/pred_onnx.root", "--num-workers", "0"], env)
    assert compare_main([f"{rundir}/pred.root", f"{rundir}/pred_onnx.root", "--tolerance", "1e-4"]) == 0
    assert "NaN in candidate: 0" in capsys.readouterr().out


def test_two_process_ddp_on_cpu(env, dataset, tmp_path):
    files = sorted(str(p) for p in (dataset / "train").glob("*.root"))
    assert len(files) >= 2, "DDP splits files between the processes"
    result = run(["torchrun", "--standalone", "--nproc_per_node=2", "-m", "multiscale.weaver_ddp", "--backend", "gloo",
                  "--gpus", "", "--data-config", "data/kin.yaml", "--network-config", "networks/multiscale_cross.py",
                  "--custom-functions", "data/jet_functions.py", "--data-train", *files,
                  "--model-prefix", str(tmp_path / "net"), "--log-file", str(tmp_path / "ddp.log"),
                  *SHORT_TRAINING], timeout=600)
    log = (tmp_path / "ddp.log.000").read_text()
    assert "Using distributed PyTorch with gloo backend on CPU" in log
    assert (tmp_path / "net_best_epoch_state.pt").is_file()


def test_wrong_usage_gives_messages_not_tracebacks(env, tmp_path):
    for args, expected in ((["nonsense"], "unknown MODEL"), (["cross", "wide"], "unknown FEATURES")):
        result = run(["./train_multiscale.sh", *args], env, check=False)
        assert result.returncode != 0 and expected in result.stderr and "Traceback" not in result.stderr
    result = run(["./train_multiscale.sh", "cross"], {**env, "DATADIR_hh4b": str(tmp_path / "none")}, check=False)
    assert result.returncode != 0 and "no train data" in result.stderr
    for action in ("predict", "export"):
        result = run(["./train_multiscale.sh", action, "kin", "paper"], env, check=False)
        assert result.returncode != 0 and "no trained model" in result.stderr


def test_missing_branch_is_named_with_its_file(dataset, tmp_path):
    source = next((dataset / "test").glob("qcd_*.root"))
    # a file without obj_btag
    with uproot.open(source) as f:
        arrays = f["Events"].arrays([b for b in f["Events"].keys() if b.startswith("obj_") and b != "obj_btag"]
                                    + ["fj1_phi", "is_signal", "is_background"])
    broken = tmp_path / "broken.root"
    with uproot.recreate(broken) as f:
        f.mktree("Events", {k: arrays[k].type for k in arrays.fields if not k.startswith("nobj")})
        f["Events"].extend({k: arrays[k] for k in arrays.fields if not k.startswith("nobj")})
    with pytest.raises(InputError, match=r"broken\.root.*obj_btag.*kin\.yaml"):
        check_files(REPO_ROOT / "data" / "kin.yaml", [str(broken)])
    # a data config asking for a branch no file has
    config = tmp_path / "typo.yaml"
    config.write_text((REPO_ROOT / "data" / "kin.yaml").read_text().replace("[obj_eta, null]", "[obj_etaa, null]"))
    with pytest.raises(SystemExit) as refused:  # the command's one-line error, not a traceback
        check_inputs_main([str(config), str(source)])
    assert "obj_etaa" in str(refused.value.code) and source.name in str(refused.value.code)


def test_in_memory_training_iterates_over_every_event(env, dataset):
    """With --in-memory weaver loads the data once and re-shuffles it each time it has gone through
    it: the number of re-shuffles counts how many events it holds. Three passes' worth of steps
    over all training events must give at most 3 re-shuffles (a fifth of the events would give 15)."""
    n_events = sum(uproot.open(f)["Events"].num_entries for f in (dataset / "train").glob("*.root"))
    n_train = int(0.8 * n_events)  # weaver's default --train-val-split
    batch = 32
    steps = 3 * n_train // batch
    run(["./train_multiscale.sh", "kin", "--num-epochs", "1", "--batch-size", str(batch), "--in-memory",
         "--steps-per-epoch", str(steps), "--num-workers", "0", "--optimizer", "adamw"], {**env, "COMMENT": "passes"})
    log = open(os.path.join(env["MS_OUTDIR"], "kin_full_passes", "train.log")).read()
    reshuffles = log.count("Re-shuffled DataIter train")
    assert 2 <= reshuffles <= 3, f"{reshuffles} passes over the loaded events: weaver loaded {steps * batch // max(reshuffles, 1)} of {n_train}"


def test_in_memory_with_a_fraction_is_refused(env):
    result = run(["./train_multiscale.sh", "kin", *SHORT_TRAINING, "--fetch-step", "0.2"], env, check=False)
    assert result.returncode != 0 and "--fetch-step 0.2" in result.stderr and "Traceback" not in result.stderr
