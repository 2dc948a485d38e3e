"""Shared fixtures.

``generated_dir``: small Pythia samples written by the real CLI, once per test session:

    hh4b_mH1000_1_0.root, hh4b_mH1000_1_1.root   300 accepted signal events (2 files)
    qcd_1_0.root, qcd_1_1.root                   300 accepted QCD events (2 files)
    ttbar_1_0.root                                150 accepted ttbar events

each with its ``.json`` sidecar. About 20 s on 2 cores.
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "tools" / "generate_events.py"

# process -> (accepted events, events per file); seed 1 and m_H = 1000 GeV throughout
GENERATED_EVENTS = {"hh4b": (300, 150), "qcd": (300, 150), "ttbar": (150, 150)}
GENERATED_SEED = 1


@pytest.fixture(scope="session")
def generated_samples():
    """What ``generated_dir`` holds: {"events": {process: (events, events_per_file)}, "seed": seed}."""
    return {"events": dict(GENERATED_EVENTS), "seed": GENERATED_SEED}


@pytest.fixture(scope="session")
def generated_dir(tmp_path_factory):
    """Directory holding the small hh4b / qcd / ttbar samples described in the module docstring."""
    outdir = tmp_path_factory.mktemp("generated")
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
    return outdir
