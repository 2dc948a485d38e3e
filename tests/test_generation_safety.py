"""The generator never leaves a half-done state behind silently: SIGTERM stops the workers too,
an interrupted dataset resumes (kept chunks untouched, the missing ones regenerated identically),
files of other settings are refused, and one --seed with another chunking gives other events."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import uproot

from multiscale.generation import chunk, cli, run

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "tools" / "generate_events.py"


def generator(*args):
    return [sys.executable, str(GENERATOR), *map(str, args)]


def events(path, branch="fj1_pt"):
    with uproot.open(path) as f:
        return f["Events"][branch].array(library="np")


def main_error(argv, capsys):
    """The one-line error of ``generate_events.py argv`` (run in this process)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.generate_main([str(a) for a in argv])
    message = str(exit_info.value.code)
    assert message.startswith("generate_events.py: error: ") and "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------
# seeds


def test_chunk_seeds_depend_on_the_chunking():
    assert run.chunk_seeds(1, 0, 10)[0] == run.chunk_seeds(1, 0, 10)[0]
    assert len({run.chunk_seeds(1, 0, k)[0] for k in (5, 10, 20, 10000)}) == 4


def test_same_seed_other_chunking_gives_other_events(tmp_path):
    common = dict(process="hh4b", events=4, seed=7)
    run.generate(run.RunConfig(**common, events_per_file=4, outdir=str(tmp_path / "k4")))
    run.generate(run.RunConfig(**common, events_per_file=2, outdir=str(tmp_path / "k2")))
    first = events(tmp_path / "k4" / "hh4b_mH1000_7_0.root")[:2]
    other = events(tmp_path / "k2" / "hh4b_mH1000_7_0.root")
    assert not np.array_equal(first, other), "chunk 0 of another --events-per-file must hold other events"
    with uproot.open(tmp_path / "k2" / "hh4b_mH1000_7_1.root") as f:
        seeds = f["Events"]["gen_seed"].array(library="np")
    assert seeds.dtype == np.int64 and np.all(seeds == 7)


# ---------------------------------------------------------------------------------------------
# SIGTERM


def _group_members(pgid):
    """Live processes of process group ``pgid`` (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.slow
def test_sigterm_stops_the_workers_and_leaves_no_file(tmp_path):
    outdir = tmp_path / "out"
    process = subprocess.Popen(
        generator("--process", "qcd", "--events", 600, "--events-per-file", 300, "--jobs", 2, "--outdir", outdir),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_group_members(process.pid)) < 3:  # the parent and its 2 pool workers
            assert process.poll() is None and time.monotonic() < deadline, "the workers never started"
            time.sleep(0.2)
        time.sleep(2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        time.sleep(0.5)
        assert _group_members(process.pid) == [], "a worker outlived its parent"
        assert process.returncode == 128 + signal.SIGTERM
        assert stderr.strip().splitlines() == [
            "generate_events.py: interrupted; complete files were kept, partial ones removed"]
        written = sorted(p.name for p in outdir.iterdir())
        assert not [name for name in written if name.endswith(".tmp")]
        time.sleep(3)
        assert sorted(p.name for p in outdir.iterdir()) == written, "files appeared after the command ended"
    finally:
        for pid in _group_members(process.pid):
            os.kill(pid, signal.SIGKILL)
        process.wait()


# ---------------------------------------------------------------------------------------------
# resuming an interrupted dataset


def make_dataset(directory):
    result = subprocess.run(["tools/make_dataset.sh", str(directory), "10", "0"], cwd=REPO, capture_output=True,
                            text=True, env={**os.environ, "JOBS": "2"}, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def mtimes(directory):
    return {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}


@pytest.mark.slow
def test_interrupted_dataset_resumes(tmp_path):
    data = tmp_path / "train"
    make_dataset(data)  # hh4b 10 (2 files), qcd 9 (2 files), ttbar 1 (1 file)
    manifests = sorted(p.name for p in data.glob("*.manifest.json"))
    assert manifests == ["hh4b_mH1000_1.manifest.json", "qcd_2.manifest.json", "ttbar_3.manifest.json"]
    assert json.loads((data / "qcd_2.manifest.json").read_text())["files"] == ["qcd_2_0.root", "qcd_2_1.root"]
    before = mtimes(data)
    signal_chunk1 = events(data / "hh4b_mH1000_1_1.root")
    # an interruption: qcd never written, hh4b's second chunk missing, no manifest for either
    for name in ("qcd_2_0", "qcd_2_1", "hh4b_mH1000_1_1"):
        (data / f"{name}.root").unlink()
        (data / f"{name}.json").unlink()
    (data / "qcd_2.manifest.json").unlink()
    (data / "hh4b_mH1000_1.manifest.json").unlink()

    output = make_dataset(data)
    assert "ttbar_3 in" in output and "complete: kept" in output
    assert "hh4b_mH1000_1 in" in output and "1 of 2 file(s) already written with these settings: kept" in output
    after = mtimes(data)
    assert set(after) == set(before)
    for name in ("hh4b_mH1000_1_0.root", "hh4b_mH1000_1_0.json", "ttbar_3_0.root", "ttbar_3.manifest.json"):
        assert after[name] == before[name], f"{name} was rewritten"
    # the regenerated chunk holds the same events: a chunk depends only on the settings and its index
    np.testing.assert_array_equal(events(data / "hh4b_mH1000_1_1.root"), signal_chunk1)

    assert make_dataset(data).count("complete: kept") == 3
    assert mtimes(data) == after


def test_other_settings_are_refused_naming_the_file(tmp_path, capsys):
    outdir = tmp_path / "out"
    base = [str(a) for a in ("--process", "hh4b", "--events", 10, "--events-per-file", 5, "--seed", 4, "--outdir", outdir)]
    assert cli.generate_main(base) == 0
    assert cli.generate_main([*base, "--jobs", "2"]) == 0, "--jobs does not change the events"
    assert "complete: kept" in capsys.readouterr().out
    # another chunking of the same run name: the manifest says no
    other_chunking = ["--process", "hh4b", "--events", 10, "--events-per-file", 10, "--seed", 4, "--outdir", outdir]
    message = main_error(other_chunking, capsys)
    assert "hh4b_mH1000_4.manifest.json: written with other settings" in message and "events_per_file 5 (now 10)" in message
    # without the manifest, a chunk's sidecar says no
    (outdir / "hh4b_mH1000_4.manifest.json").unlink()
    message = main_error([*base, "--btag-eff", "0.7"], capsys)
    assert "hh4b_mH1000_4_0.json: written with other settings: btag_eff 0.77 (now 0.7)" in message
    # a chunk made by another seeding scheme
    sidecar = outdir / "hh4b_mH1000_4_1.json"
    summary = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**summary, "pythia_seed": summary["pythia_seed"] + 1}))
    message = main_error(base, capsys)
    assert "hh4b_mH1000_4_1.json: chunk 1 was generated with Pythia seed" in message
    assert sorted(p.name for p in outdir.iterdir()) == ["hh4b_mH1000_4_0.json", "hh4b_mH1000_4_0.root",
                                                       "hh4b_mH1000_4_1.json", "hh4b_mH1000_4_1.root"]
    shutil.rmtree(outdir)


def test_files_written_before_a_setting_existed_are_kept(tmp_path, capsys):
    """A run written by an older version (its manifest and sidecars lack a setting RunConfig has since
    gained) was made with that setting's default: a rerun keeps it, not refuses it."""
    outdir = tmp_path / "out"
    base = [str(a) for a in ("--process", "qcd", "--events", 6, "--events-per-file", 3, "--seed", 7, "--outdir", outdir)]
    assert cli.generate_main(base) == 0
    capsys.readouterr()
    for path in outdir.glob("*.json"):  # as an older version wrote them
        record = json.loads(path.read_text())
        for key in ("input_format", "inputs", "no_btag_labels"):
            record["settings"].pop(key)
        path.write_text(json.dumps(record))
    assert cli.generate_main(base) == 0 and "complete: kept" in capsys.readouterr().out
    message = main_error([*base, "--btag-eff", "0.7"], capsys)  # a real difference is still refused
    assert "btag_eff 0.77 (now 0.7)" in message


# ---------------------------------------------------------------------------------------------
# a full disk


def _file_size_limit(limit_bytes):
    """preexec_fn: files may grow to ``limit_bytes`` only; a write beyond fails with an OSError (EFBIG),
    as one on a full disk does (ENOSPC), instead of killing the process (SIGXFSZ ignored)."""
    import resource

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.slow
def test_a_write_that_fails_stops_with_one_line_and_leaves_nothing(tmp_path, jobs):
    """The disk fills while a chunk is written (here: the file-size limit of the process): one line, no
    traceback, no partial file; it used to end with a raw OSError traceback."""
    outdir = tmp_path / "out"
    outdir.mkdir()
    result = subprocess.run(
        # one event per file: a file of one event (~70 kB) is already beyond the limit
        generator("--process", "hh4b", "--events", 2, "--events-per-file", 1, "--jobs", jobs, "--outdir", outdir),
        cwd=REPO, capture_output=True, text=True, timeout=300, preexec_fn=_file_size_limit(20_000))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("generate_events.py: error: cannot write to ") and "File too large" in lines[0]
    assert "partial files removed" in lines[0]
    assert sorted(p.name for p in outdir.iterdir()) == []


def test_a_sidecar_that_cannot_be_written_takes_its_root_file_along(tmp_path, capsys, monkeypatch):
    """No space left for the .json after the .root: neither stays (a .root alone is half a chunk)."""
    import errno

    def full_disk(path, content):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(chunk, "write_json", full_disk)
    message = main_error(["--process", "qcd", "--events", 5, "--outdir", tmp_path], capsys)
    assert "No space left on device" in message and "qcd_1_0.json" in message
    assert not [p for p in tmp_path.iterdir()]
