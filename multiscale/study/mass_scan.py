"""Evaluate the mass scan (the workflow's evaluate rule, ``workflow/Snakefile``): per model, mass point and fold the
weighted ROC figures, the best S/sqrt(B) and the expected 95% CL limit (pyhf, binned score); per
mass point and fold the cut-based selection, optimised on the other folds and evaluated on this
one; paired comparisons (cross vs concat, parameterised vs per-mass cross, ML vs cuts); plots.

    python -m multiscale.study.mass_scan --out training/mass_scan --data datasets/mass_scan \\
        --masses 600 800 1000 1500 2000 --models kin jets concat cross cross_param

Layout read (written by the workflow): ``OUT/mH<m>/<model>_<features>_fold<f>/pred.root``,
``OUT/param/cross_param_<features>_fold<f>/pred_mH<m>.root``, and the events under ``DATA``:
``generated/hh4b_mH<m>_*_<f>.root`` (signal), ``truth_test/{qcd,ttbar}_*_<f>.root`` (background,
one copy per b-tag class). Writes ``OUT/results.json``, ``OUT/results.md`` and ``OUT/img/*.png``.
"""

import argparse
import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import uproot
from tqdm import tqdm

from ..evaluation import cutbased
from ..evaluation.io import Prediction, read_prediction
from ..evaluation.limits import limit_from_histograms, score_histograms, signal_cross_section
from ..evaluation.metrics import MIN_BACKGROUND_EVENTS, SIGNAL_EFFICIENCIES, auc, best_significance, roc, working_point
from ..evaluation.report import jsonable
from ..evaluation.yields import yield_weights
from ..definitions import LUMINOSITY_FB
from ..schema import TREE_NAME
from . import plots, report
from .compare import log_ratio, paired_difference
from .workflow import fold_of

PARAMETERISED = "cross_param"
CUT_BASED = "cut-based"
# branches the cut-based selection and the yields need, read from the event files themselves
EVENT_BRANCHES = ("is_signal", "process", "weight", "xsec_fb", "acceptance", "event_id", *(
    f"{jet}_{field}" for jet in ("fj1", "fj2") for field in ("pt", "eta", "phi", "mass", "sdmass", "nbtag")))


def prediction_path(out, model, mass, fold, features):
    if model == PARAMETERISED:
        return Path(out) / "param" / f"{model}_{features}_fold{fold}" / f"pred_mH{mass:g}.root"
    return Path(out) / f"mH{mass:g}" / f"{model}_{features}_fold{fold}" / "pred.root"


def find_predictions(out, models, masses, features):
    """{model: {mass: {fold: path}}} of the prediction files present."""
    found = {}
    for model in models:
        for mass in masses:
            for fold in range(100):
                path = prediction_path(out, model, mass, fold, features)
                if path.is_file():
                    found.setdefault(model, {}).setdefault(mass, {})[fold] = path
    return found


# --- one training ----------------------------------------------------------------------------------------------


def evaluate_training(prediction, luminosity_fb, n_bins):
    """Weighted ROC figures, best S/sqrt(B) and expected limit of one prediction file; and its ROC."""
    yields = yield_weights(prediction, luminosity_fb)
    curve = roc(prediction.is_signal, prediction.score, sample_weight=yields)
    entry = {
        "file": str(prediction.path),
        "auc": auc(prediction.is_signal, prediction.score, sample_weight=yields),
        "working_points": {f"{e:.2f}": working_point(curve, e) for e in SIGNAL_EFFICIENCIES},
        "significance": best_significance(prediction.is_signal, prediction.score, yields),
        **limits(score_histograms(prediction, luminosity_fb, n_bins), signal_cross_section(prediction)),
    }
    return entry, curve


def limits(histograms, signal_xsec_fb):
    """The expected limits from one set of histograms, with and without the background MC stat. uncertainty."""
    return {"limit": _limit_summary(limit_from_histograms(histograms, signal_xsec_fb)),
            "limit_no_mc_stat": _limit_summary(limit_from_histograms(histograms, signal_xsec_fb, mc_stat=False))}


def _limit_summary(limit):
    """The numbers of a limit result worth keeping (not the histograms' arrays)."""
    keep = ("mu_up", "xsec_up_fb", "xsec_band_fb", "signal_xsec_fb", "note")
    summary = {key: limit.get(key) for key in keep}
    histograms = limit.get("histograms") or {}
    summary["n_bins"] = len(histograms.get("background", []))
    summary["low_statistics"] = histograms.get("low_statistics")
    return summary


# --- the cut-based reference ---------------------------------------------------------------------------------


def read_events(files):
    """The events of schema files as a Prediction without a score (for the cut-based selection)."""
    parts = []
    for path in files:
        with uproot.open(path) as handle:
            parts.append(handle[TREE_NAME].arrays(list(EVENT_BRANCHES), library="np"))
    arrays = {name: np.concatenate([part[name] for part in parts]) for name in EVENT_BRANCHES}
    arrays["score_is_signal"] = np.zeros(len(arrays["weight"]))
    return Prediction(path=f"{len(files)} event files", arrays=arrays)


def event_files(data, mass, folds, n_folds):
    data = Path(data)
    files = sorted(data.glob(f"generated/hh4b_mH{mass:g}_*.root"))
    files += sorted(data.glob("truth_test/qcd_*.root")) + sorted(data.glob("truth_test/ttbar_*.root"))
    return [f for f in files if fold_of(f, n_folds) in folds]


def cut_based_folds(data, mass, folds, n_folds, luminosity_fb):
    """{fold: result} of the cuts optimised on the other folds' events and evaluated (S/sqrt(B), limit) on
    the fold; every fold's events are read once."""
    events = {fold: read_events(event_files(data, mass, [fold], n_folds)) for fold in range(n_folds)}
    results = {}
    for fold in folds:
        # N_eff >= 10 on the optimisation folds: the b-tagged QCD background rests on the few events with
        # heavy-flavour subjets, and more would leave no working point at low m_H. On the test fold
        # (a quarter of that sample) such a selection keeps fewer: evaluate() flags it.
        others = Prediction.concatenate([events[f] for f in range(n_folds) if f != fold])
        optimised = cutbased.best_selection(others, luminosity_fb, mass)
        if optimised["selection"] is None:
            results[fold] = {"selection": None, "note": optimised.get("note")}
            continue
        selection, test = optimised["selection"], events[fold]
        result = cutbased.evaluate(test, selection, luminosity_fb)
        result["definition"] = selection.describe()
        result["selection"] = selection.as_dict()
        result.update(limits(cutbased.cut_based_histograms(test, selection, luminosity_fb), signal_cross_section(test)))
        results[fold] = result
    return results


# --- summaries and comparisons ---------------------------------------------------------------------------------


def usable_spread(values):
    """{mean, std, n} of the usable values (None and non-finite dropped)."""
    usable = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if len(usable) == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(usable.mean()), "std": float(usable.std(ddof=1)) if len(usable) > 1 else None,
            "n": int(len(usable))}


def figures(entry):
    """The per-training numbers that are summarised and compared."""
    wp = entry.get("working_points", {})
    # a classifier's best score cut (a dict), or the cut-based selection's own numbers
    best = entry["significance"] if isinstance(entry.get("significance"), dict) else entry
    return {
        "auc": entry.get("auc"),
        **{f"rejection_{key}": point["rejection"] for key, point in wp.items()},
        "significance": best.get("significance"),
        "background_effective_events": best.get("background_effective_events"),
        "limit_fb": (entry.get("limit") or {}).get("xsec_up_fb"),
        "limit_no_mc_stat_fb": (entry.get("limit_no_mc_stat") or {}).get("xsec_up_fb"),
    }


def summarise(per_fold):
    """{figure: spread} over the folds of one model at one mass."""
    names = sorted({name for entry in per_fold.values() for name in figures(entry)})
    return {name: usable_spread([figures(entry).get(name) for entry in per_fold.values()]) for name in names}


def comparisons(results, masses):
    """Paired over the common folds: cross vs concat, cross_param vs cross, each model vs the cuts."""
    pairs = [("cross", "concat"), (PARAMETERISED, "cross")] + [
        (model, CUT_BASED) for model in results if model != CUT_BASED
    ]
    out = {}
    for a, b in pairs:
        if a not in results or b not in results:
            continue
        for mass in masses:
            first, second = results[a].get(mass, {}), results[b].get(mass, {})
            folds = sorted(set(first) & set(second))
            if not folds:
                continue
            entry = {"folds": folds}
            for key in ("limit_fb", "limit_no_mc_stat_fb"):
                entry[key.replace("_fb", "_ratio")] = log_ratio(
                    [figures(first[f])[key] for f in folds], [figures(second[f])[key] for f in folds])
            if b != CUT_BASED:
                entry["auc_difference"] = paired_difference(
                    [figures(first[f])["auc"] for f in folds], [figures(second[f])["auc"] for f in folds])
            out[f"{a} vs {b} @ {mass:g}"] = entry
    return out


# --- command line ----------------------------------------------------------------------------------------------


def _evaluate_file(job):
    path, luminosity_fb, n_bins = job
    logging.getLogger("pyhf").setLevel(logging.CRITICAL)  # a failed fit is recorded as a note, not printed
    return evaluate_training(read_prediction(path), luminosity_fb, n_bins)


def _cut_based(job):
    logging.getLogger("pyhf").setLevel(logging.CRITICAL)
    return cut_based_folds(*job)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m multiscale.study.mass_scan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the study's output directory (trainings, results)")
    parser.add_argument("--data", required=True, help="the study's event directory (generated/, truth_test/)")
    parser.add_argument("--masses", type=float, nargs="+", required=True)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--features", default="paperb")
    parser.add_argument("--folds", type=int, default=5, help="folds the events were cut into")
    parser.add_argument("--ref-mass", type=float, default=1000.0, help="mass point of the ROC plot")
    parser.add_argument("--luminosity", type=float, default=LUMINOSITY_FB, help=f"fb^-1 (default: {LUMINOSITY_FB:g})")
    parser.add_argument("--bins", type=int, default=10, help="score bins before merging, for the limits")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="parallel processes (default: all cores)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    found = find_predictions(out, args.models, args.masses, args.features)
    if not found:
        raise SystemExit(f"mass_scan: error: no prediction file under {out} for models {args.models}")
    jobs = [(model, mass, fold, path) for model, by_mass in found.items() for mass, by_fold in by_mass.items()
            for fold, path in by_fold.items()]
    results, curves = {}, {}
    # one process per core: the limit fits take seconds each, and the trainings are independent
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        evaluated = pool.map(_evaluate_file, [(path, args.luminosity, args.bins) for *_, path in jobs])
        for (model, mass, fold, _), (entry, curve) in zip(jobs, tqdm(evaluated, total=len(jobs), desc="evaluating trainings",
                                                                      unit="file", disable=None)):
            results.setdefault(model, {}).setdefault(mass, {})[fold] = entry
            if mass == args.ref_mass:
                curves.setdefault(model, []).append(curve)
        folds_at = {mass: sorted({fold for by_mass in results.values() for fold in by_mass.get(mass, {})})
                    for mass in args.masses}
        cut_masses = [mass for mass in args.masses if folds_at[mass]]
        cuts = pool.map(_cut_based, [(args.data, mass, folds_at[mass], args.folds, args.luminosity) for mass in cut_masses])
        for mass, by_fold in zip(cut_masses, tqdm(cuts, total=len(cut_masses), desc="optimising cuts", unit="mass",
                                                  disable=None)):
            results.setdefault(CUT_BASED, {})[mass] = by_fold

    summary = {
        "luminosity_fb": args.luminosity,
        "masses": args.masses,
        "min_background_events": MIN_BACKGROUND_EVENTS,
        "summary": {model: {f"{mass:g}": summarise(by_mass[mass]) for mass in args.masses if mass in by_mass}
                    for model, by_mass in results.items()},
        "comparisons": comparisons(results, args.masses),
        "per_training": {model: {f"{mass:g}": {str(f): e for f, e in by_fold.items()} for mass, by_fold in by_mass.items()}
                         for model, by_mass in results.items()},
    }
    (out / "img").mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(jsonable(summary), indent=1, sort_keys=True) + "\n")
    plots.limit_vs_mass(summary, out / "img" / "limit_vs_mass.png", "limit_fb", "with background MC stat. uncertainty")
    plots.limit_vs_mass(summary, out / "img" / "limit_vs_mass_no_mc_stat.png", "limit_no_mc_stat_fb",
                        "without background MC stat. uncertainty")
    plots.significance_vs_mass(summary, out / "img" / "significance_vs_mass.png")
    if curves:
        reference = results.get(CUT_BASED, {}).get(args.ref_mass, {})
        plots.roc_at(curves, summary, reference, args.ref_mass, out / "img" / f"roc_mH{args.ref_mass:g}.png")
    (out / "results.md").write_text(report.markdown(summary))
    print(f"wrote {out / 'results.json'}, {out / 'results.md'} and the plots in {out / 'img'}")


if __name__ == "__main__":
    main()
