"""train_multiscale.sh's weaver options (multiscale/driver_options.py): the data files taken out of the command line,
the driver's defaults under the user's options, one pass per epoch in memory, and the study's recipe read from its
config by the workflow."""

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import uproot
import yaml

from multiscale import driver_options
from multiscale.check_inputs import needed_branches
from multiscale.weaver_io import load_data_config

REPO = Path(__file__).resolve().parents[1]
EVENTS_PER_FILE = 10

# a weaver that records its arguments (a shell function wins over the venv's weaver)
FAKE_WEAVER = r"""
import sys
from pathlib import Path
args = sys.argv[1:]
Path(args[args.index("--log") + 1] + ".args").write_text("\n".join(args))
"""


def test_data_files_are_taken_out_in_every_form():
    args = ["--data-train", "a.root", "b.root", "--num-epochs", "2", "--data-test=c.root", "-o", "seed", "1",
            "--data-test", "d.root"]
    assert driver_options.split_data_files(args) == (["a.root", "b.root"], ["c.root", "d.root"],
                                                     ["--num-epochs", "2", "-o", "seed", "1"])


def test_the_last_value_of_an_option_wins_as_in_weaver():
    assert driver_options.last_value(["--fetch-step", "0.5", "--fetch-step=1"], "--fetch-step") == "1"
    assert driver_options.last_value(["--fetch-step-val", "0.5"], "--fetch-step") is None
    assert driver_options.in_memory(["--in-memory", "--no-in-memory"]) is False


@pytest.mark.parametrize("args, fetch", [([], "0.2"), (["--in-memory"], "1"), (["--in-memory", "--fetch-step=1.0"], "1")])
def test_fetch_step_streams_or_loads_every_event(args, fetch):
    assert driver_options.fetch_options(args) == ["--fetch-step", fetch]


def test_the_study_recipe_is_its_config():
    config = yaml.safe_load((REPO / "config" / "mass_scan.yaml").read_text())
    config.update(epochs=7, batch=64, optimizer="sgd", start_lr=0.05, workers=2)
    recipe = driver_options.study_recipe(config)
    assert recipe == ["--num-epochs", "7", "--batch-size", "64", "--num-workers", "2", "--optimizer", "sgd",
                      "--start-lr", "0.05", "--in-memory"]


def write_events(path, signal):
    branches = sorted(needed_branches(load_data_config(REPO / "data" / "kin.yaml")))
    columns = {b: np.random.default_rng(0).normal(size=EVENTS_PER_FILE).astype(np.float32) for b in branches}
    columns.update(is_signal=np.full(EVENTS_PER_FILE, signal, np.float32),
                   is_background=np.full(EVENTS_PER_FILE, not signal, np.float32))
    path.parent.mkdir(parents=True, exist_ok=True)
    with uproot.recreate(path) as f:
        f.mktree("Events", {b: np.float32 for b in branches})
        f["Events"].extend(columns)


@pytest.fixture
def driver(tmp_path):
    for split in ("train", "test"):
        write_events(tmp_path / "data" / split / "hh4b_0.root", True)
        write_events(tmp_path / "data" / split / "qcd_0.root", False)
    script = tmp_path / "fake_weaver.py"
    script.write_text(FAKE_WEAVER)
    environment = {**os.environ, "DATADIR_hh4b": str(tmp_path / "data"), "MS_OUTDIR": str(tmp_path / "training"),
                   "BASH_FUNC_weaver%%": f'() {{ python "{script}" "$@"; }}'}
    environment.pop("DDP_NGPUS", None)

    def run(*args):
        result = subprocess.run([str(REPO / "train_multiscale.sh"), "kin", *args], env=environment,
                                capture_output=True, text=True, timeout=600)
        log = tmp_path / "training" / "kin_full" / "train.log.args"
        return result, (log.read_text().splitlines() if log.exists() else None)

    return run


@pytest.mark.slow
def test_in_memory_trains_one_pass_per_epoch_under_the_users_options(driver):
    """--in-memory without --steps-per-epoch (weaver refuses it): the driver counts the training events; the
    driver's defaults come first, so the user's optimizer wins (weaver keeps an option's last value)."""
    result, args = driver("--in-memory", "--batch-size", "4", "--optimizer", "adamw")
    assert result.returncode == 0, result.stderr[-2000:]
    training_events = 2 * EVENTS_PER_FILE * driver_options.TRAIN_VAL_SPLIT
    assert args[args.index("--steps-per-epoch") + 1] == str(int(training_events) // 4)
    optimizers = [args[i + 1] for i, arg in enumerate(args) if arg == "--optimizer"]
    assert optimizers == ["ranger", "adamw"] and args[args.index("--fetch-step") + 1] == "1"


def test_a_partial_fetch_in_memory_is_one_line_before_weaver(driver):
    result, args = driver("--in-memory", "--fetch-step", "0.2")
    assert result.returncode == 1 and args is None
    assert result.stderr.strip().splitlines()[-1].startswith("train_multiscale.sh: --in-memory with --fetch-step 0.2")


def dry_run(tmp_path, *config):
    result = subprocess.run(["snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "-n", "-p", "--cores", "3",
                             "--config", "masses=[1000]", "repeats=1", "repeats_ref=1", "models=[kin]", *config],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_the_workflow_trains_with_the_configs_recipe_on_every_core(tmp_path):
    log = dry_run(tmp_path, "optimizer=sgd", "start_lr=0.05", "epochs=7")
    trainings = [line for line in log.splitlines() if "train_multiscale.sh kin" in line]
    assert trainings and all("--num-epochs 7" in line and "--optimizer sgd --start-lr 0.05 --in-memory" in line
                             for line in trainings)
    assert all("OMP_NUM_THREADS=3 " in line for line in trainings)  # workflow.cores
    assert re.search(r"multiscale\.study\.mass_scan .* --jobs 3 ", log)


def test_a_workflow_without_cores_can_still_be_unlocked(tmp_path):
    """The jobs' threads are read from --cores only as jobs are scheduled: `snakemake --unlock` needs none."""
    result = subprocess.run(["snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--unlock"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "Unlocked" in result.stdout + result.stderr, result.stderr[-2000:]
