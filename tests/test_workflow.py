"""The mass-scan workflow (workflow/Snakefile): the whole DAG of every profile in a dry run; a tiny study end to
end on the local executor, killed twice in the middle (SIGKILL, then SIGTERM) and resumed; a failing job."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import uproot
import yaml

from multiscale.study.workflow import Study

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile")]
TINY = ["--configfile", str(REPO / "tests" / "data" / "mass_scan_tiny.yaml")]
TINY_CONFIG = yaml.safe_load((REPO / "tests" / "data" / "mass_scan_tiny.yaml").read_text())


def snakemake_command(workdir, *args):
    """Run from the repository (its profiles/default applies), the data and results in ``workdir``."""
    return [*SNAKEMAKE, "--directory", str(workdir), *args]


def job_stats(log):
    """{rule: jobs} of Snakemake's "Job stats" table."""
    table = log.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


@pytest.mark.parametrize("profile", ["slurm", "htcondor", None])
def test_every_profile_builds_the_whole_dag(profile, tmp_path):
    # (a dry run counts 1 core unless told: --cores 64 lets the cluster profiles' threads through)
    args = ["--profile", str(REPO / "profiles" / profile), "--cores", "64"] if profile else ["--cores", "2"]
    result = subprocess.run(snakemake_command(tmp_path, "-n", "-p", *args), cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    trainings = [line for line in result.stdout.splitlines() if "train_multiscale.sh" in line]
    assert trainings and all(f"OMP_NUM_THREADS={4 if profile else 2} " in line for line in trainings)
    study = Study(yaml.safe_load((REPO / "config" / "mass_scan.yaml").read_text()))
    chunks = study.chunks * len(study.samples())
    param = int(study.config["param"])
    expected = {
        # the test copies per file; the training copies per signal mass and of all backgrounds together
        "generate": chunks, "truth_tag_test": chunks, "truth_tag_train_signal": len(study.masses),
        "truth_tag_train_backgrounds": 1,
        # per mass and fold trained, and the parameterised model's per fold (when the config asks for it)
        "split": sum(study.repeats_at(mass) for mass in study.masses) + param * int(study.config["repeats"]),
        "param_config": param * (1 + len(study.masses)), "train": len(study.trainings()),
        "predict_param": param * int(study.config["repeats"]) * len(study.masses), "evaluate": 1, "report": 1, "all": 1}
    assert job_stats(result.stdout + result.stderr) == {rule: jobs for rule, jobs in expected.items() if jobs}


def test_the_gpu_settings_share_gpus_through_slots(tmp_path):
    """config/mass_scan_gpu.yaml (dry run: no GPU here): a GPU check first, every training on a GPU slot."""
    result = subprocess.run(snakemake_command(tmp_path, "-n", "-p", "--cores", "16", "--configfile",
                                              str(REPO / "config" / "mass_scan_gpu.yaml")),
                            cwd=REPO, capture_output=True, text=True)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert job_stats(log)["gpu_check"] == 1 and job_stats(log)["train"] == 2 * 5 * 3
    trainings = [line for line in log.splitlines() if "train_multiscale.sh" in line]
    assert len(trainings) == 30 and all("gpu_slots --gpus 1 --per-gpu 10" in line for line in trainings)


def start(workdir, log, *args):
    """Snakemake in the background, in a session of its own (as a batch job or a terminal would run it)."""
    return subprocess.Popen(snakemake_command(workdir, "--cores", "2", *TINY, *args), cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_until(condition, proc, timeout=300):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"snakemake ended (status {proc.returncode}) before the moment to kill it"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def processes_running_in(path):
    """Pids of the processes whose command line names ``path`` (the jobs of a workflow run there)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(path) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_jobs_processes_end_with_the_process_that_started_it(tmp_path):
    """Snakemake runs its jobs from threads through workflow/scripts/job_shell: SIGKILL to Snakemake ends them all."""
    marker = tmp_path / "job_marker"
    parent = subprocess.Popen([sys.executable, "-c", f"""
import subprocess, threading, time
threading.Thread(target=subprocess.run, args=([{str(REPO / 'workflow/scripts/job_shell')!r}, "-c",
    "sleep 60 {marker} & python3 -c 'import time; time.sleep(60)' {marker}; wait"],)).start()
time.sleep(60)"""])
    deadline = time.monotonic() + 20
    while len(processes_running_in(marker)) < 4 and time.monotonic() < deadline:  # shell, bash, sleep, python
        time.sleep(0.1)
    assert len(processes_running_in(marker)) == 4
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while processes_running_in(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_running_in(marker) == []


def mtimes(paths):
    return {path: path.stat().st_mtime_ns for path in paths}


@pytest.mark.integration
def test_a_tiny_study_killed_and_resumed_redoes_only_the_unfinished_jobs(tmp_path):
    """SIGKILL of Snakemake in the middle of a training: its jobs end with it, the rerun redoes that training only;
    SIGTERM: the running jobs finish, none starts; the third run completes the study and writes the report."""
    data, out = tmp_path / TINY_CONFIG["data"], tmp_path / TINY_CONFIG["out"]
    generated = [data / "generated" / name for name in ("hh4b_mH1000_2000_0.root", "qcd_nohf_11_1.root", "qcd_hf_13_0.root",
                                                        "ttbar_12_0.root")]
    kin_log = out / "mH1000" / "kin_paperb_fold0.stdout"
    kin = out / "mH1000" / "kin_paperb_fold0" / "pred.root"

    # 1. SIGKILL to Snakemake alone while the kin training runs
    with open(tmp_path / "run1.log", "w") as log:
        run = start(tmp_path, log)
        wait_until(lambda: kin_log.exists() and "Epoch" in kin_log.read_text() and not kin.exists(), run)
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
    deadline = time.monotonic() + 30
    while processes_running_in(tmp_path) and time.monotonic() < deadline:  # the jobs' shells stop their groups
        time.sleep(0.5)
    assert processes_running_in(tmp_path) == [], "a job outlived the killed Snakemake"
    assert not kin.exists()
    kept = mtimes(generated)
    # a killed Snakemake leaves its lock on the directory: lifted by hand, as Snakemake's message says
    unlock = subprocess.run(snakemake_command(tmp_path, "--unlock", *TINY), cwd=REPO, capture_output=True, text=True)
    assert unlock.returncode == 0, unlock.stderr[-2000:]

    # 2. SIGTERM while the next jobs run: they finish, nothing new starts, and the rerun keeps their outputs
    with open(tmp_path / "run2.log", "w") as log:
        run = start(tmp_path, log)
        wait_until(lambda: "Job " in (tmp_path / "run2.log").read_text().split("Job stats:")[-1], run)
        os.kill(run.pid, signal.SIGTERM)
        assert run.wait(timeout=300) != 0
    second = (tmp_path / "run2.log").read_text()
    assert "Will exit after finishing currently running jobs" in second
    assert job_stats(second).get("train") and "generate" not in job_stats(second), second[-3000:]
    assert mtimes(generated) == kept

    # 3. to the end: only what is left, then nothing
    third = subprocess.run(snakemake_command(tmp_path, "--cores", "2", *TINY), cwd=REPO, capture_output=True,
                           text=True)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert "generate" not in job_stats(third.stdout + third.stderr)
    assert mtimes(generated) == kept
    assert uproot.open(kin)["Events"].num_entries > 0
    dry = subprocess.run(snakemake_command(tmp_path, "-n", "--cores", "2", *TINY), cwd=REPO, capture_output=True,
                         text=True)
    assert "Nothing to be done" in dry.stdout + dry.stderr

    results = json.loads((out / "results.json").read_text())
    assert {"kin", "cross_param", "cut-based"} <= set(results["summary"])
    # the cuts pooled over the folds where a selection was found (the tiny background may leave none)
    found = [fold for fold, entry in results["per_training"]["cut-based"]["1000"].items() if entry.get("selection")]
    assert ("cut-based pooled" in results["summary"]) == bool(found)
    report = (out / "report.html").read_text()
    assert report.count('src="data:image/png;base64,') == 5  # the limit (3), significance and ROC plots, in the file
    assert "m_H = 1000 GeV" in report and "<table>" in report and "generate" in report  # tables, wall times


def test_a_failing_job_names_itself_and_the_others_finish(tmp_path):
    """ttbar cannot be generated (--pthat-min beyond sqrt(s)/2): its jobs fail with their log named; with the
    default profile's keep-going the signal and QCD files are written whole, and nothing downstream of ttbar runs."""
    # (Snakemake merges this over the tiny config key by key: qcd keeps its veto, qcd_hf stays)
    broken = {"backgrounds": {"qcd": {"process": "qcd", "events": 40, "seed": 11},
                              "ttbar": {"process": "ttbar", "events": 20, "seed": 12, "options": ["--pthat-min", "8000"]}},
              "signal": {"process": "hh4b", "events": 20, "seed": 1000}}
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    result = subprocess.run(snakemake_command(tmp_path, "--cores", "2", *TINY, str(tmp_path / "broken.yaml")),
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    data, out = tmp_path / TINY_CONFIG["data"], tmp_path / TINY_CONFIG["out"]
    assert result.returncode != 0
    errors = [block.split("Job ", 1)[0] for block in log.split("Error in rule ")[1:]]
    assert len(errors) == 2 and all(error.startswith("generate:") and "ttbar_12_" in error for error in errors), log[-3000:]
    assert any(f"log: {data}/logs/generate/ttbar_12_0.log" in error for error in errors)
    assert "generate_events.py: error: --pthat-min must lie in" in (data / "logs/generate/ttbar_12_0.log").read_text()
    assert not list((data / "generated").glob("ttbar*"))
    for name in ("hh4b_mH1000_2000_0", "hh4b_mH1000_2000_1", "qcd_nohf_11_0", "qcd_nohf_11_1", "qcd_hf_13_0", "qcd_hf_13_1"):
        path = data / "generated" / f"{name}.root"
        assert uproot.open(path)["Events"].num_entries == json.loads(path.with_suffix(".json").read_text())["n_accepted"]
    assert (data / "truth_test" / "qcd_nohf_11_0.root").exists()  # the jobs that did not need ttbar ran
    assert not (out / "results.json").exists()
