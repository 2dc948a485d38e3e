"""Small builders shared by several test modules (fixtures live in conftest.py): a weaver-like prediction file and
the study's default config. Imported as ``from tests.helpers import ...`` (pytest puts the repository root on the path)."""

from pathlib import Path

import numpy as np
import uproot
import yaml

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
