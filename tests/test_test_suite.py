"""The test suite's own set-up: tests/run.sh runs two pytest-xdist workers unless told otherwise, the session
samples are built once for all workers, and every integration test counts as slow (the quick subset
``-m "not slow"`` leaves it out) and comes first (the longest files start first)."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests import conftest

REPO = Path(__file__).resolve().parents[1]


class WorkerTempFactory:
    """What built_once reads of pytest's tmp_path_factory in an xdist worker: its base temp, popen-gwK."""

    def __init__(self, run_folder, worker):
        self.basetemp = run_folder / f"popen-{worker}"
        self.basetemp.mkdir(parents=True, exist_ok=True)

    def getbasetemp(self):
        return self.basetemp


def test_workers_share_one_build_of_a_session_sample(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "XDIST_WORKER", "gw0")
    builds = []

    def build(folder):
        builds.append(folder)
        (folder / "sample.root").write_text("events")

    first = conftest.built_once(WorkerTempFactory(tmp_path, "gw0"), "generated", build)
    second = conftest.built_once(WorkerTempFactory(tmp_path, "gw1"), "generated", build)
    assert first == second == tmp_path / "generated" and builds == [first]
    assert (second / "sample.root").read_text() == "events"


def test_a_failed_build_is_redone_from_scratch_by_the_next_worker(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "XDIST_WORKER", "gw0")

    def broken(folder):
        (folder / "half.root").write_text("half")
        raise RuntimeError("event generation failed")

    with pytest.raises(RuntimeError):
        conftest.built_once(WorkerTempFactory(tmp_path, "gw0"), "generated", broken)
    folder = conftest.built_once(WorkerTempFactory(tmp_path, "gw1"), "generated", lambda f: (f / "ok.root").touch())
    assert sorted(p.name for p in folder.iterdir()) == ["ok.root"]


def collected(*args):
    """The test ids that tests/run.sh would run."""
    result = subprocess.run(["./tests/run.sh", "--collect-only", "-q", *args], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode in (0, 5), result.stdout[-3000:] + result.stderr[-3000:]  # 5: none selected
    return [line for line in result.stdout.splitlines() if "::" in line]


@pytest.mark.slow
def test_integration_files_come_first_and_the_quick_subset_leaves_them_out():
    # the stitching tests carry the integration mark only; the html report's are quick
    files = ("tests/test_html_report.py", "tests/test_stitching.py")
    everything, quick = collected(*files), collected("-m", "not slow", *files)
    files_in_order = [test.split("::")[0] for test in everything]
    assert files_in_order == sorted(files_in_order, key=lambda name: name != files[1]) and files[0] in files_in_order
    assert quick == [test for test in everything if test.startswith(files[0])]


@pytest.mark.parametrize("options, workers",
                         [((), 2), (("-n", "0"), 0), (("-p", "no:xdist"), 0), (("-s",), 0), (("-n1",), 1)])
def test_run_sh_starts_two_workers_unless_told(options, workers):
    result = subprocess.run(["./tests/run.sh", "-v", *options, "tests/test_html_report.py"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert (f"created: {workers}/{workers} worker" in log) if workers else ("[gw" not in log), log[-3000:]
    assert ("LoadFileScheduling" in log) == (workers == 2), log[-3000:]  # a test file per worker by default
