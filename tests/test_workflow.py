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

from multiscale.study.workflow import TRUTH_DIRS, Study

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
        # every training's validation fold (the parameterised model's: in predict_param, with its test fold)
        "predict_validation": len([run for run in study.trainings() if run[0] != "param"]),
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
    trainings = [line for line in log.splitlines() if "train_multiscale.sh" in line and "--data-train" in line]
    predictions = [line for line in log.splitlines() if "train_multiscale.sh predict" in line]  # validation folds
    assert len(trainings) == len(predictions) == 30
    assert all("gpu_slots --gpus 1 --per-gpu 10" in line for line in trainings + predictions)


def dry_run(workdir, *args, overlay=None):
    """The tiny study's dry run, ``overlay`` (a dict) laid over its config."""
    files = list(TINY)
    if overlay is not None:
        (workdir / "overlay.yaml").write_text(yaml.safe_dump(overlay))
        files.append(str(workdir / "overlay.yaml"))  # one --configfile: a second one would replace the first
    result = subprocess.run(snakemake_command(workdir, "-n", "-p", "--cores", "2", *files, *args), cwd=REPO,
                            capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("masses, expected", [("1000", [1000]), ("1000,2000", [1000, 2000])])
def test_masses_on_the_command_line_are_taken_as_numbers(tmp_path, masses, expected):
    status, log = dry_run(tmp_path, "--config", f"masses={masses}", "repeats_ref=1")
    assert status == 0 and "Traceback" not in log, log[-3000:]
    evaluate = next(line for line in log.splitlines() if "multiscale.study.mass_scan" in line)
    assert f"--masses {' '.join(map(str, expected))} " in evaluate


@pytest.mark.parametrize("overlay, message", [
    # training r tests on fold r: folds 3 and 4 do not exist
    ({"repeats": 5}, "workflow config: error: repeats: 5 trainings need 5 folds (training r tests on fold r), but "
                     "folds is 3"),
    # ... and chooses its cuts on fold r + 1: with two folds nothing is left to train on (the schema's rule)
    ({"folds": 2}, "workflow config: error: folds: 2 is less than the minimum of 3 (training r tests on fold r, "
                   "chooses its cuts on fold r + 1 and trains on the others)"),
    # QCD's heavy-flavour-required half turned inclusive: the vetoed half has no complement, the inclusive overlaps
    ({"backgrounds": {"qcd_hf": {"process": "qcd", "events": 6, "seed": 13, "options": ["--pthat-min", "200"]}}},
     "workflow config: error: backgrounds: process qcd has qcd (--hf-filter veto), qcd_hf (inclusive)"),
    ({"masses": "1000,heavy"}, "workflow config: error: masses: 'heavy' is not a number"),
    # the limits' tag categories cut the region of >= min_tags (3) tags into parts
    ({"categories": [2, 3, 4]}, "workflow config: error: categories: [2, 3, 4] do not cut the region of >= 3 tags"),
    # `--config param=true` arrives as text: the error says how to write a boolean there
    ({"param": "true"}, "workflow config: error: param: 'true' is not of type 'boolean' (on the command line write "
                        "param=True or param=False)"),
])
def test_a_wrong_setting_is_one_line_in_the_dry_run(tmp_path, overlay, message):
    status, log = dry_run(tmp_path, overlay=overlay)
    errors = [line for line in log.splitlines() if "error" in line.lower()]
    assert status != 0 and errors == [line for line in errors if line.startswith(message)] and len(errors) == 1, log[-3000:]
    assert "Traceback" not in log and 'File "' not in log


@pytest.mark.parametrize("settings, tags, categories", [
    ([], 3, "3 4"), (["--config", "min_tags=2"], 2, "2 3 4"), (["--config", "categories=[3]"], 3, "3")])
def test_the_region_and_its_categories_reach_the_truth_tagging_and_the_evaluation(tmp_path, settings, tags, categories):
    """The analysis region (min_tags, default 3) is where every sample is truth-tagged (training and test copies) and
    evaluated; the limits combine its tag categories (default: one per tag count)."""
    status, log = dry_run(tmp_path, *settings)
    assert status == 0 and "Traceback" not in log, log[-3000:]
    tagging = [line for line in log.splitlines() if "tools/truth_tag.py" in line]
    assert {"--mode test", "--mode train"} <= {mode for line in tagging for mode in re.findall(r"--mode \w+", line)}
    assert all(f"--min-tags {tags} " in line for line in tagging)
    evaluate = next(line for line in log.splitlines() if "multiscale.study.mass_scan" in line)
    assert f"--min-tags {tags} --categories {categories} " in evaluate


def test_a_fourth_background_is_trained_on_tested_and_evaluated(tmp_path):
    """The tiny study with ttbar in its two heavy-flavour halves: the new sample's files are handed by name to every
    training (train and test sets), to the parameterised model's predictions and to the evaluation (cuts)."""
    four = {"backgrounds": {"ttbar": {**TINY_CONFIG["backgrounds"]["ttbar"], "options": ["--hf-filter", "veto"]},
                            "ttbar_hf": {"process": "ttbar", "events": 6, "seed": 14, "options": ["--hf-filter", "require"]}}}
    status, log = dry_run(tmp_path, overlay=four)
    assert status == 0, log[-3000:]
    commands = [line for line in log.splitlines() if "train_multiscale.sh" in line or "multiscale.study.mass_scan" in line]
    trainings = [line for line in commands if "--data-train" in line]
    assert len(trainings) == 2  # kin and cross_param, fold 0
    for line in trainings:  # fold 0: tested on fold 0, validated on fold 1, trained on fold 2
        train, test = line.split("--data-train ", 1)[1].split(" --data-test ")
        assert "/train/ttbar_hf_14_2.root" in train and "_14_1.root" not in train
        assert "/test/ttbar_hf_14_0.root" in test.split(" -o ")[0]
    predictions = [line for line in commands if "train_multiscale.sh predict" in line]
    assert len(predictions) == 2  # kin's validation fold; cross_param's test and validation folds (one job)
    assert all("/validation/ttbar_hf_14_1.root" in line for line in predictions if "_validation." in line)
    assert any("/test/ttbar_hf_14_0.root" in line for line in predictions)
    evaluate = next(line for line in commands if "multiscale.study.mass_scan" in line)
    background, training = evaluate.split("--background-events ", 1)[1].split(" --training-backgrounds ")
    assert all(f"truth_test/ttbar_hf_14_{c}.root" in background for c in (0, 1, 2))
    assert all(f"truth_train_physical/ttbar_hf_14_{c}.root" in training for c in (0, 1, 2))


def start(workdir, log, configfiles):
    """Snakemake in the background, in a session of its own (as a batch job or a terminal would run it)."""
    return subprocess.Popen(snakemake_command(workdir, "--cores", "2", *configfiles), cwd=REPO, stdout=log,
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
    SIGTERM: the running jobs finish, none starts; the third run completes the study and writes the report.
    The parameterised model stays in: this is the one test that trains and predicts it for real. (Fewer
    heavy-flavour QCD events, most of the generation's cost, would leave a fold without them: the evaluation then
    refuses the vetoed half alone.)"""
    tiny = list(TINY)
    data, out = tmp_path / TINY_CONFIG["data"], tmp_path / TINY_CONFIG["out"]
    generated = [data / "generated" / name for name in ("hh4b_mH1000_2000_0.root", "qcd_nohf_11_1.root", "qcd_hf_13_0.root",
                                                        "ttbar_12_0.root")]
    kin_log = out / "mH1000" / "kin_paperb_fold0.stdout"
    kin = out / "mH1000" / "kin_paperb_fold0" / "pred.root"

    # 1. SIGKILL to Snakemake alone while the kin training runs
    with open(tmp_path / "run1.log", "w") as log:
        run = start(tmp_path, log, tiny)
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
    unlock = subprocess.run(snakemake_command(tmp_path, "--unlock", *tiny), cwd=REPO, capture_output=True, text=True)
    assert unlock.returncode == 0, unlock.stderr[-2000:]

    # 2. SIGTERM while the next jobs run: they finish, nothing new starts, and the rerun keeps their outputs
    with open(tmp_path / "run2.log", "w") as log:
        run = start(tmp_path, log, tiny)
        wait_until(lambda: "Job " in (tmp_path / "run2.log").read_text().split("Job stats:")[-1], run)
        os.kill(run.pid, signal.SIGTERM)
        assert run.wait(timeout=300) != 0
    second = (tmp_path / "run2.log").read_text()
    assert "Will exit after finishing currently running jobs" in second
    assert job_stats(second).get("train") and "generate" not in job_stats(second), second[-3000:]
    assert mtimes(generated) == kept

    # 3. to the end: only what is left, then nothing
    third = subprocess.run(snakemake_command(tmp_path, "--cores", "2", *tiny), cwd=REPO, capture_output=True,
                           text=True)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert "generate" not in job_stats(third.stdout + third.stderr)
    assert mtimes(generated) == kept
    assert uproot.open(kin)["Events"].num_entries > 0
    dry = subprocess.run(snakemake_command(tmp_path, "-n", "--cores", "2", *tiny), cwd=REPO, capture_output=True,
                         text=True)
    assert "Nothing to be done" in dry.stdout + dry.stderr

    results = json.loads((out / "results.json").read_text())
    assert {"kin", "cross_param", "cut-based"} <= set(results["summary"])
    assert (results["min_tags"], results["tag_categories"]) == (3, ["3", "4"])  # the region and its limits' categories
    # the cuts pooled over the folds where a selection was found (the tiny background may leave none)
    found = [fold for fold, entry in results["per_training"]["cut-based"]["1000"].items() if entry.get("selection")]
    assert ("cut-based pooled" in results["summary"]) == bool(found)
    report = (out / "report.html").read_text()
    # the limit (4: template x 3, smooth fit), significance and ROC plots, and a sculpting plot per model, in the file
    assert report.count('src="data:image/png;base64,') >= 6 and "limit_vs_mass_smooth.png" in report
    assert "sculpting_kin_mH1000.png" in report
    kin = results["per_training"]["kin"]["1000"]["0"]
    assert "limit_smooth" in kin and kin["validation_file"].endswith("pred_validation.root")
    assert "m_H = 1000 GeV" in report and "<table>" in report and "generate" in report  # tables, wall times


@pytest.mark.slow
def test_a_failing_job_names_itself_and_the_others_finish(tmp_path):
    """qcd_hf cannot be generated (--pthat-min beyond sqrt(s)/2): its jobs fail with their log named; with the
    default profile's keep-going the signal, QCD and ttbar files are written whole, and nothing downstream of qcd_hf
    runs. The run targets the events and their first truth tagging only (the trainings need every background)."""
    # (Snakemake merges this over the tiny config key by key: qcd keeps its veto, ttbar stays; qcd_hf fails at once,
    # before its costly heavy-flavour filter runs)
    broken = {"backgrounds": {"qcd": {"process": "qcd", "events": 40, "seed": 11},
                              "qcd_hf": {"process": "qcd", "events": 6, "seed": 13,
                                         "options": ["--pthat-min", "8000", "--hf-filter", "require"]}},
              "signal": {"process": "hh4b", "events": 20, "seed": 1000}}
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    files = TINY_CONFIG["folds"] * TINY_CONFIG.get("chunks_per_fold", 1)  # one generation job per file
    data, train_dir, test_dir = tmp_path / TINY_CONFIG["data"], TRUTH_DIRS["train"], TRUTH_DIRS["test"]
    targets = [f"{data}/generated/{stem}_{chunk}.root" for stem in ("hh4b_mH1000_2000", "qcd_nohf_11", "qcd_hf_13",
                                                                        "ttbar_12") for chunk in range(files)]
    # a job that ran beside the failures, and two downstream of them: qcd_hf's own and all the backgrounds' together
    targets += [f"{data}/{test_dir}/qcd_nohf_11_0.root", f"{data}/{test_dir}/qcd_hf_13_0.root",
                f"{data}/{train_dir}/qcd_nohf_11_0.root"]
    # (as the rules name them, with the working directory; before --configfile, which takes every file after it)
    result = subprocess.run(snakemake_command(tmp_path, *targets, "--cores", "2", *TINY, str(tmp_path / "broken.yaml")),
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode != 0
    errors = [block.split("Job ", 1)[0] for block in log.split("Error in rule ")[1:]]
    assert len(errors) == files, log[-3000:]
    assert all(error.startswith("generate:") and "qcd_hf_13_" in error for error in errors), log[-3000:]
    assert any(f"log: {data}/logs/generate/qcd_hf_13_0.log" in error for error in errors)
    assert "generate_events.py: error: --pthat-min must lie in" in (data / "logs/generate/qcd_hf_13_0.log").read_text()
    assert not list((data / "generated").glob("qcd_hf*"))
    for name in (f"{sample}_{fold}" for sample in ("hh4b_mH1000_2000", "qcd_nohf_11", "ttbar_12") for fold in range(files)):
        path = data / "generated" / f"{name}.root"
        assert uproot.open(path)["Events"].num_entries == json.loads(path.with_suffix(".json").read_text())["n_accepted"]
    assert (data / test_dir / "qcd_nohf_11_0.root").exists()  # the jobs that did not need qcd_hf ran
    assert not (data / test_dir / "qcd_hf_13_0.root").exists() and not (data / train_dir).exists()
