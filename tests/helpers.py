"""Small builders shared by several test modules (fixtures live in conftest.py): a weaver-like prediction file,
the study's default config, and the generator's command line run in this process. Imported as ``from tests.helpers import ...`` (pytest puts the repository root on the path)."""

import contextlib
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import uproot
import yaml

from multiscale.generation import cli

REPO = Path(__file__).resolve().parents[1]

QCD, TTBAR, HH4B = 0, 1, 2
OBSERVERS = (
    "event_id process weight xsec_fb acceptance mH "
    "fj1_pt fj1_eta fj1_phi fj1_mass fj1_sdmass fj1_nbtag fj1_tau1 fj1_tau2 "
    "fj2_pt fj2_eta fj2_phi fj2_mass fj2_sdmass fj2_nbtag fj2_tau1 fj2_tau2 met ht"
).split()


def write_prediction(path, score, process, xsec_fb=None, acceptance=None, drop=(), **observers):
    """A weaver-like prediction file. ``process`` sets the truth (hh4b = signal); unspecified
    observers get harmless defaults (fat jets back to back, outside the cut-based windows)."""
    score = np.asarray(score, dtype=np.float32)
    process = np.asarray(process, dtype=np.int32)
    n = len(score)
    is_signal = process == HH4B
    columns = {
        "is_signal": is_signal,
        "is_background": ~is_signal,
        "score_is_signal": score,
        "score_is_background": 1 - score,
        "_label_": (~is_signal).astype(np.int32),
        "event_id": np.arange(n, dtype=np.int64),
        "process": process,
        "xsec_fb": np.full(n, 1.0) if xsec_fb is None else np.asarray(xsec_fb, dtype=np.float64),
        "acceptance": np.full(n, 1.0) if acceptance is None else np.asarray(acceptance, dtype=np.float64),
        "mH": np.where(is_signal, 1000.0, 0.0),
    }
    columns["weight"] = columns["xsec_fb"] / 1000.0
    defaults = {"pt": 400.0, "eta": 0.0, "mass": 40.0, "sdmass": 30.0, "nbtag": 0, "tau1": 0.3, "tau2": 0.1}
    for jet, phi in (("fj1", 0.0), ("fj2", np.pi)):
        for field, value in {**defaults, "phi": phi}.items():
            dtype = np.int32 if field == "nbtag" else np.float32
            columns[f"{jet}_{field}"] = np.full(n, value, dtype=dtype)
    columns["met"], columns["ht"] = np.full(n, 10.0), np.full(n, 800.0)
    for name, values in observers.items():
        columns[name] = np.asarray(values, dtype=columns[name].dtype)
    assert set(OBSERVERS) <= set(columns)
    for name in drop:
        del columns[name]
    with uproot.recreate(path) as handle:
        tree = handle.mktree("Events", {name: values.dtype for name, values in columns.items()})
        tree.extend(columns)
    return Path(path)


def hand_case(tmp_path, name="hand.root"):
    """4 signal and 4 background events, scores chosen so that one tie makes a diagonal ROC segment.

    signal scores 0.9, 0.6, 0.6, 0.2; background 0.6, 0.3, 0.1, 0.05. ROC points (eps_S, eps_B),
    threshold going down: 0.9 -> (1/4, 0); 0.6 -> (3/4, 1/4) [two signal and one background tie];
    0.3 -> (3/4, 2/4); 0.2 -> (1, 2/4); 0.1 -> (1, 3/4); 0.05 -> (1, 1).
    """
    score = [0.9, 0.6, 0.6, 0.2, 0.6, 0.3, 0.1, 0.05]
    process = [HH4B] * 4 + [QCD] * 4
    return write_prediction(tmp_path / name, score, process)


def default_config(**overrides):
    """config/mass_scan.yaml as Snakemake reads it, with ``overrides`` on top."""
    return {**yaml.safe_load((REPO / "config" / "mass_scan.yaml").read_text()), **overrides}


def generate(*args, check=True):
    """``tools/generate_events.py ARGS`` run in this process: the script's own ``generate_main``, without the
    ~3 s of CPU a fresh interpreter spends importing Pythia, FastJet and uproot. Returns what ``subprocess.run``
    would: the exit status, and stdout and stderr as the script's pipes would carry them."""
    argv = list(map(str, args))
    with script_output() as output:
        try:
            status = cli.generate_main(argv)
        except SystemExit as stop:
            status = stop.code
        if isinstance(status, str):  # sys.exit("message"): the interpreter prints the line, exit status 1
            print(status, file=sys.stderr)
            status = 1
    result = subprocess.CompletedProcess(argv, status or 0, *output)
    if check and result.returncode != 0:
        raise RuntimeError(f"generate_events.py {' '.join(argv)} failed:\n{result.stderr}")
    return result


@contextlib.contextmanager
def script_output():
    """Capture file descriptors 1 and 2 as a subprocess's pipes would: Python's prints and warnings, Pythia's
    and FastJet's C++ output and forked workers' alike. Yields a list that holds (stdout, stderr) afterwards."""
    output = []
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, warnings.catch_warnings():
        warnings.resetwarnings()  # a fresh interpreter's filters, and its warnings printed to stderr
        for hidden in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", hidden)
        warnings.showwarning = lambda *warning: print(warnings.formatwarning(*warning[:4]), end="", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            with open(1, "w", buffering=1, closefd=False) as stdout, open(2, "w", buffering=1, closefd=False) as stderr:
                with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                    yield output
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
        for captured in (out, err):
            captured.seek(0)
            output.append(captured.read())
