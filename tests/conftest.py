"""Shared fixtures.

``generated_dir``: small Pythia samples written by the real CLI, once per test session:

    hh4b_mH1000_1_0.root, hh4b_mH1000_1_1.root   300 accepted signal events (2 files)
    qcd_1_0.root, qcd_1_1.root                   300 accepted QCD events (2 files)
    ttbar_1_0.root                                150 accepted ttbar events

each with its ``.json`` sidecar. About 20 s on 2 cores.

Under pytest-xdist (``tests/run.sh`` runs two workers) the session samples are built once for all workers
(``built_once``), and each worker runs torch and OpenMP on one thread: two workers with a thread per core each
would oversubscribe the cores.
"""

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ... in a pytest-xdist worker, else None
if XDIST_WORKER:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported: torch reads it then

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "tools" / "generate_events.py"

# process -> (accepted events, events per file); seed 1 and m_H = 1000 GeV throughout
GENERATED_EVENTS = {"hh4b": (300, 150), "qcd": (300, 150), "ttbar": (150, 150)}
GENERATED_SEED = 1


def pytest_collection_modifyitems(items):
    """An integration test runs the real chain, so it is slow too: ``-m "not slow"`` leaves it out unmarked.
    The files that hold integration tests (the longest) come first, so that under ``--dist loadfile
    --no-loadscope-reorder`` (tests/run.sh) no worker starts one of them while the other has run out of work."""
    for item in items:
        if item.get_closest_marker("integration") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
    long_files = {item.path for item in items if item.get_closest_marker("integration")}
    items.sort(key=lambda item: item.path not in long_files)  # stable: the collection order otherwise


@pytest.fixture(scope="session")
def generated_samples():
    """What ``generated_dir`` holds: {"events": {process: (events, events_per_file)}, "seed": seed}."""
    return {"events": dict(GENERATED_EVENTS), "seed": GENERATED_SEED}


def built_once(tmp_path_factory, name, build):
    """A folder that ``build(folder)`` fills, made once per test run. Under pytest-xdist the first worker to get
    here builds it in the run's common temporary folder while holding a lock, and the others wait and reuse it
    (the pattern of pytest-xdist's docs); a build that failed is retried by the next worker from scratch."""
    if not XDIST_WORKER:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent  # pytest-N, above each worker's popen-gwK
    folder, done = shared / name, shared / f"{name}.done"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def generated_dir(tmp_path_factory):
    """Directory holding the small hh4b / qcd / ttbar samples described in the module docstring."""
    return built_once(tmp_path_factory, "generated", generate_test_samples)


def generate_test_samples(outdir):
    # the three processes run side by side (2 chunks each for hh4b and qcd, in 2 jobs)
    runs = [
        subprocess.Popen(
            [sys.executable, str(GENERATOR), "--process", process, "--events", str(events),
             "--events-per-file", str(per_file), "--seed", str(GENERATED_SEED), "--jobs", "2",
             "--outdir", str(outdir)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for process, (events, per_file) in GENERATED_EVENTS.items()
    ]
    for run in runs:
        _, stderr = run.communicate()
        if run.returncode != 0:
            raise RuntimeError(f"event generation for the test samples failed:\n{stderr}")


# --- merged multi-jet samples (tests/test_merging.py, tests/test_signed_weights.py) ---------------------------

DATA = REPO / "tests" / "data"
CKKWL_FILE = DATA / "madgraph-2.2.1-Z-ckkwl.lhe.gz"  # Z + 0, 1, 2 jets, LO, made for CKKW-L (ickkw = 0, no scale)
FXFX_FILE = DATA / "madgraph-2.2.1-Z-fxfx.lhe.gz"  # Z + 0, 1 jets, NLO, FxFx (ickkw = 3), negative weights
MERGED_INPUT_EVENTS = 400  # the first 400 events of each file: a few seconds of showering
Z_THRESHOLDS = ("--fj1-ptmin", "20", "--fj2-ptmin", "10")  # Z + jets at 7 TeV: soft fat jets


def mlm_sample(path):
    """The CKKW-L Z + 0, 1, 2 jets file given the run-card lines of an MLM run (ickkw = 1, xqcut = 10 GeV),
    written to ``path``: a real multi-jet sample that Pythia merges with MadGraph's MLM parameters. Its
    events were made with a 3 GeV kT cut and without MadGraph's MLM alpha_s reweighting, so it tests the
    set-up and the veto, not MLM's physics."""
    import gzip

    text = gzip.open(CKKWL_FILE, "rt").read()
    for old, new in ((" 0        = ickkw ", " 1        = ickkw "), (" 3   = xqcut ", " 10  = xqcut ")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    with gzip.open(path, "wt") as out:
        out.write(text)
    return path


# run name -> (input file, options); generated once per session, side by side
MERGED_RUNS = {
    "ckkwl": (CKKWL_FILE, ("--merging-scale", "20")),
    "unmerged": (CKKWL_FILE, ("--merging", "none")),
    "mlm": ("mlm", ()),
    "fxfx": (FXFX_FILE, ("--merging-scale", "20")),
}


@pytest.fixture(scope="session")
def merged_runs(tmp_path_factory):
    """run name -> output directory of MERGED_RUNS (the first MERGED_INPUT_EVENTS events of each file)."""
    base = built_once(tmp_path_factory, "merged", generate_merged_runs)
    return {name: base / name for name in MERGED_RUNS}


def generate_merged_runs(base):
    mlm = mlm_sample(base / "madgraph-2.2.1-Z-mlm.lhe.gz")
    processes = {}
    for name, (source, options) in MERGED_RUNS.items():
        source = mlm if source == "mlm" else source
        processes[name] = subprocess.Popen(
            [sys.executable, str(GENERATOR), "--process", "qcd", "--lhe", str(source), *options,
             "--events", str(MERGED_INPUT_EVENTS), *Z_THRESHOLDS, "--outdir", str(base / name)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for name, process in processes.items():
        _, stderr = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"generating the {name} sample failed:\n{stderr}")
