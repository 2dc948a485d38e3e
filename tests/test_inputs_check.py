"""``python -m multiscale.check_inputs``: files weaver would skip or misread are errors naming the
file (truncated, RNTuple), suspicious ones warnings (NaN/inf, the same generated events twice);
``train_multiscale.sh`` stops on an error before training anything."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import pytest
import uproot

from multiscale.check_inputs import InputError, check_files, needed_branches
from multiscale.generation.writer import write_root
from multiscale.weaver_io import load_data_config

REPO_ROOT = Path(__file__).resolve().parents[1]

CONFIG = REPO_ROOT / "data" / "jets_kin.yaml"
COUNTERS = ("nfj1_part", "nfj2_part", "nobj")  # uproot's shared counters: rewritten by write_root


def check(*paths):
    """check_files on ``paths``; returns the warnings."""
    warnings = []
    check_files(CONFIG, [str(p) for p in paths], warn=warnings.append)
    return warnings


def check_cli(*paths):
    return subprocess.run([sys.executable, "-m", "multiscale.check_inputs", str(CONFIG), *map(str, paths)],
                          cwd=REPO_ROOT, capture_output=True, text=True)


def read_columns(path):
    with uproot.open(path) as f:
        tree = f["Events"]
        arrays = tree.arrays([name for name in tree.keys() if name not in COUNTERS])
    return {name: arrays[name] for name in arrays.fields}


@pytest.fixture(scope="module")
def source(generated_dir):
    return next(generated_dir.glob("qcd_*_0.root"))


@pytest.mark.slow
def test_generated_files_pass_without_warnings(generated_dir):
    assert check(generated_dir / "*.root") == []


@pytest.mark.slow
def test_truncated_file_is_an_error_naming_it(source, tmp_path):
    data = source.read_bytes()
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(data[: int(len(data) * 0.9)])  # header and tree metadata intact, last baskets gone
    with uproot.open(truncated) as f:
        assert set(needed_branches(load_data_config(CONFIG))) <= set(f["Events"].keys()), "opens and lists its branches"
    with pytest.raises(InputError, match=r"truncated\.root: branch \w+ cannot be read"):
        check(source, truncated)
    result = check_cli(source, truncated)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("check_inputs.py: error: ") and str(truncated) in lines[0]


@pytest.mark.slow
def test_rntuple_is_an_error_naming_it(source, tmp_path):
    columns = read_columns(source)
    rntuple = tmp_path / "rntuple.root"
    with uproot.recreate(rntuple) as f:
        f["Events"] = columns  # uproot 5.7 writes an RNTuple for an assigned dict
    with uproot.open(rntuple) as f:
        assert "RNTuple" in f.classname_of("Events")
    expected = r"rntuple\.root: 'Events' is an RNTuple; weaver reads only TTrees: write it with mktree\+extend"
    with pytest.raises(InputError, match=expected):
        check(rntuple)


@pytest.mark.slow
def test_non_finite_values_are_warned_per_branch_and_file(source, tmp_path):
    columns = read_columns(source)
    fj1_pt = np.asarray(columns["fj1_pt"]).copy()
    fj1_pt[[2, 5]] = [np.nan, np.inf]
    columns["fj1_pt"] = fj1_pt
    with_nan = tmp_path / "with_nan.root"
    write_root(with_nan, columns)
    warnings = check(with_nan)  # a warning, not an error
    assert len(warnings) == 1
    assert "with_nan.root" in warnings[0] and "fj1_pt" in warnings[0] and "2 non-finite" in warnings[0]
    result = check_cli(with_nan)
    assert result.returncode == 0 and "warning:" in result.stderr and "fj1_pt" in result.stderr


@pytest.mark.slow
def test_the_same_generated_events_twice_are_warned(generated_dir, tmp_path):
    signal = sorted(generated_dir.glob("hh4b_*.root"))
    assert len(signal) == 2
    copy = tmp_path / "test_hh4b.root"
    shutil.copy(signal[0], copy)  # e.g. a test sample generated with the training sample's seed
    warnings = check(*signal, copy)
    assert len(warnings) == 1
    assert str(signal[0]) in warnings[0] and str(copy) in warnings[0] and "same generated events" in warnings[0]
    assert str(signal[1]) not in warnings[0]


@pytest.mark.slow
def test_files_without_events_are_not_the_same_events(source, tmp_path):
    """Two samples with no event in the tag region (a tiny study's fold) share no events, though their
    identities (no process, no seed, no event id) are equal."""
    empty = []
    for name in ("qcd_nohf_11_2.root", "qcd_hf_13_2.root"):
        write_root(tmp_path / name, {key: values[:0] for key, values in read_columns(source).items()})
        empty.append(tmp_path / name)
    assert check(*empty) == []


@pytest.mark.slow
def test_filtered_and_vetoed_runs_of_one_seed_are_not_the_same_events(generated_dir, tmp_path):
    """The heavy-flavour filtered and vetoed samples of one seed share process, gen_seed and event ids."""
    from multiscale.generation.truth_tagging import read_columns

    qcd = sorted(generated_dir.glob("qcd_*_0.root"))[0]
    halves = []
    for name, phase_space in (("qcd_hf_1_0.root", 1), ("qcd_nohf_1_0.root", 2)):
        columns = read_columns(qcd)
        columns["phase_space"] = np.full(len(columns["weight"]), phase_space, dtype=np.int32)
        write_root(tmp_path / name, columns)
        halves.append(tmp_path / name)
    with uproot.open(halves[0]) as handle:
        assert handle["Events"].num_entries > 0
    assert check(*halves) == []


@pytest.mark.slow
def test_train_multiscale_stops_on_an_unreadable_file(generated_dir, tmp_path):
    data = tmp_path / "hh4b"
    for split in ("train", "test"):
        (data / split).mkdir(parents=True)
        for f in generated_dir.glob("*.root"):
            os.symlink(f, data / split / f.name)
    bad = data / "test" / "qcd_broken.root"
    content = next(generated_dir.glob("qcd_*_0.root")).read_bytes()
    bad.write_bytes(content[: int(len(content) * 0.9)])
    env = {**os.environ, "DATADIR_hh4b": str(data), "MS_OUTDIR": str(tmp_path / "training")}
    result = subprocess.run(["./train_multiscale.sh", "kin", "--num-epochs", "1"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "qcd_broken.root" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "training").exists(), "nothing trained"
