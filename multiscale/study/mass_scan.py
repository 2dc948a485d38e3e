"""Evaluate the mass scan (the workflow's evaluate rule, ``workflow/Snakefile``): per model, mass point and fold the
weighted ROC figures, the best S/sqrt(B) and the expected 95% CL limit (asymptotic CLs, binned score); per
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
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..evaluation import cutbased
from ..evaluation.io import Prediction, read_event_files, read_prediction
from ..evaluation.limits import limit_from_histograms, score_histograms, signal_cross_section, systematics_of
from ..evaluation.metrics import (
    MIN_BACKGROUND_EVENTS, SIGNAL_EFFICIENCIES, auc, best_significance, effective_events, enough_events, roc,
    working_point,
)
from ..evaluation.report import jsonable
from ..definitions import LUMINOSITY_FB
from ..evaluation.yields import event_index, phase_space_of, restrict, sample_name, yield_weights
from . import plots, report
from .compare import ALPHA, detectable_difference, holm, log_ratio, paired_difference, pairs_needed
from .workflow import fold_of

PARAMETERISED = "cross_param"
CUT_BASED = "cut-based"
CUT_BASED_POOLED = "cut-based pooled"  # the test folds' yields averaged over the folds: one value per mass
LIMIT_FIGURES = ("limit_fb", "limit_no_mc_stat_fb", "limit_syst_fb")
# branches the cut-based selection and the yields need, read from the event files themselves
EVENT_BRANCHES = ("is_signal", "process", "phase_space", "gen_seed", "weight", "xsec_fb", "acceptance", "event_id",
                  "btag_weight_up", "btag_weight_down", *(
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


def evaluate_training(prediction, luminosity_fb, n_bins, min_events=MIN_BACKGROUND_EVENTS, cut_efficiency=None):
    """Weighted ROC figures, best S/sqrt(B) and expected limits of one prediction file; and its ROC.

    ``min_events``: the N_eff floor of the score bins and of the best cut. ``cut_efficiency``: the
    signal efficiency of the cut-based selection on the same test fold, where the network's
    background is compared with the cuts' (``at_cut_efficiency``)."""
    yields = yield_weights(prediction, luminosity_fb)
    event = event_index(prediction)  # truth-tagged copies of one event: one MC event in N_eff
    curve = roc(prediction.is_signal, prediction.score, sample_weight=yields, event=event)
    histograms = score_histograms(prediction, luminosity_fb, n_bins, min_events)
    entry = {
        "file": str(prediction.path),
        "auc": auc(prediction.is_signal, prediction.score, sample_weight=yields),
        "working_points": {f"{e:.2f}": working_point(curve, e, min_events) for e in SIGNAL_EFFICIENCIES},
        "significance": best_significance(prediction.is_signal, prediction.score, yields, min_events, event=event),
        **limits(histograms, signal_cross_section(prediction)),
    }
    if cut_efficiency is not None:
        point = working_point(curve, cut_efficiency, min_events)
        background = float(yields[~prediction.is_signal].sum())
        entry["at_cut_efficiency"] = {**point, "B": point["background_efficiency"] * background}
    return entry, curve


def limits(histograms, signal_xsec_fb):
    """The expected limits from one set of histograms: with the background MC statistical uncertainty,
    without it, and with it and the systematic uncertainties (limits.systematics_of); and the
    background MC statistics of the most signal-like bin (the one that drives the limit)."""
    return {"limit": _limit_summary(limit_from_histograms(histograms, signal_xsec_fb)),
            "limit_no_mc_stat": _limit_summary(limit_from_histograms(histograms, signal_xsec_fb, mc_stat=False)),
            "limit_syst": _limit_summary(limit_from_histograms(histograms, signal_xsec_fb,
                                                               systematics=systematics_of(histograms))),
            "top_bin_effective_events": float(histograms["background_effective_events"][-1]),
            "top_bin_background": float(histograms["background"][-1])}


def _limit_summary(limit):
    """The numbers of a limit result worth keeping (not the histograms' arrays)."""
    keep = ("mu_up", "xsec_up_fb", "xsec_band_fb", "signal_xsec_fb", "note")
    summary = {key: limit.get(key) for key in keep}
    histograms = limit.get("histograms") or {}
    summary["n_bins"] = len(histograms.get("background", []))
    summary["low_statistics"] = histograms.get("low_statistics")
    return summary


# --- the cut-based reference ---------------------------------------------------------------------------------


def read_events(files, min_tags=0):
    """The events of schema files as a Prediction without a score (for the cut-based selection)."""
    return in_tag_region(read_event_files(files, EVENT_BRANCHES), min_tags)


def in_tag_region(prediction, min_tags):
    """The copies with >= ``min_tags`` b-tagged subjets, with their yields (0: all)."""
    if not min_tags:
        return prediction
    tags = np.asarray(prediction.arrays["fj1_nbtag"]) + np.asarray(prediction.arrays["fj2_nbtag"])
    return restrict(prediction, tags >= min_tags)


def event_files(data, mass, folds, n_folds):
    data = Path(data)
    # the signal truth-tagged like the background when the study did so (analysis region), else as generated
    files = sorted(data.glob(f"truth_test/hh4b_mH{mass:g}_*.root")) or sorted(data.glob(f"generated/hh4b_mH{mass:g}_*.root"))
    files += sorted(data.glob("truth_test/qcd_*.root")) + sorted(data.glob("truth_test/ttbar_*.root"))
    return [f for f in files if fold_of(f, n_folds) in folds]


def cut_based_folds(data, mass, folds, n_folds, luminosity_fb, min_events=MIN_BACKGROUND_EVENTS, min_tags=0):
    """({fold: result}, pooled) of the cuts optimised on the other folds' events and evaluated
    (S/sqrt(B), limits) on the fold; every fold's events are read once.

    The networks and the cuts are held to one N_eff floor ``min_events`` on the test fold: the cuts
    are chosen among the working points keeping (n_folds - 1) x min_events on the n_folds - 1 folds
    they are optimised on. ``pooled``: the test folds' yields averaged over the folds, each with its
    own fold's selection (n_folds times the MC statistics of one fold), and their limits."""
    events = {fold: read_events(event_files(data, mass, [fold], n_folds), min_tags) for fold in range(n_folds)}
    results, parts = {}, []
    for fold in folds:
        others = Prediction.concatenate([events[f] for f in range(n_folds) if f != fold])
        optimised = cutbased.best_selection(others, luminosity_fb, mass, min_background_events=(n_folds - 1) * min_events)
        if optimised["selection"] is None:
            results[fold] = {"selection": None, "note": optimised.get("note")}
            continue
        selection, test = optimised["selection"], events[fold]
        result = cutbased.evaluate(test, selection, luminosity_fb, min_events)
        result["definition"] = selection.describe()
        result["selection"] = selection.as_dict()
        histograms = cutbased.cut_based_histograms(test, selection, luminosity_fb, min_effective_events=min_events)
        result.update(limits(histograms, signal_cross_section(test)))
        results[fold] = result
        parts.append(histograms)
    return results, pooled_cut_based(parts, signal_cross_section(events[folds[0]]), min_events) if parts else None


def pooled_cut_based(histograms, signal_xsec_fb, min_events):
    """One count from the test folds' cut-based counts averaged over the folds (their yields are each
    an estimate of the whole sample's: the mean has the sumw2 sum / F^2)."""
    n = len(histograms)
    pooled = {
        "edges": histograms[0]["edges"],
        "signal": np.array([sum(h["signal"].sum() for h in histograms) / n]),
        "background": np.array([sum(h["background"].sum() for h in histograms) / n]),
        "background_sumw2": np.array([sum(h["background_sumw2"].sum() for h in histograms) / n**2]),
        "min_effective_events": min_events,
        "variations": {name: {key: np.array([sum(h["variations"][name][key].sum() for h in histograms) / n])
                              for key in ("signal", "background")}
                       for name in histograms[0].get("variations", {})},
    }
    pooled["background_effective_events"] = effective_events(pooled["background"], pooled["background_sumw2"])
    pooled["low_statistics"] = not bool(enough_events(pooled["background_effective_events"], min_events).all())
    s, b = float(pooled["signal"][0]), float(pooled["background"][0])
    return {"folds_pooled": n, "S": s, "B": b, "significance": s / np.sqrt(b) if b > 0 else None,
            "background_effective_events": float(pooled["background_effective_events"][0]),
            **limits(pooled, signal_xsec_fb)}


def training_composition(data, luminosity_fb):
    """What the networks saw against what the analysis region holds: per background sample, its training copies
    (count and share) and its share of the test copies' expected yield (the physical region), over every fold."""
    data = Path(data)

    def per_sample(directory):
        files = [f for f in sorted((data / directory).glob("*.root")) if not f.name.startswith("hh4b")]
        if not files:
            return None
        events = read_events(files)
        names = [str(sample_name(p, s)) for p, s in zip(events.arrays["process"], phase_space_of(events))]
        return events, np.array(names)

    train, test = per_sample("truth_train_physical"), per_sample("truth_test")
    if train is None or test is None:
        return {}
    yields = yield_weights(test[0], luminosity_fb)
    total = yields.sum()
    return {name: {"training_copies": int((train[1] == name).sum()),
                   "training_share": float((train[1] == name).mean()),
                   "region_yield_share": float(yields[test[1] == name].sum() / total)}
            for name in sorted(set(test[1]))}


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
        "limit_syst_fb": (entry.get("limit_syst") or {}).get("xsec_up_fb"),
        "top_bin_effective_events": entry.get("top_bin_effective_events"),
        # a network's background where the cuts' signal efficiency is (the cuts: their own)
        "background_at_cut_efficiency": (entry.get("at_cut_efficiency") or {}).get("B", entry.get("B")),
    }


def summarise(per_fold):
    """{figure: spread} over the folds of one model at one mass."""
    names = sorted({name for entry in per_fold.values() for name in figures(entry)})
    return {name: usable_spread([figures(entry).get(name) for entry in per_fold.values()]) for name in names}


def comparisons(results, masses, n_folds):
    """Paired over the common folds: cross vs concat, cross_param vs cross, each model vs the cuts.

    Limits (with and without MC statistics, with systematics) compare by ratio, the AUC by difference,
    and a network's background at the cuts' signal efficiency by ratio to the cuts' background; each
    with the corrected resampled t-test (folds share n_folds - 2 training folds), the p-values then
    Holm-adjusted over every test of the study, and the power of the test at today's spread."""
    ratio = 1.0 / (n_folds - 1)
    pairs = [("cross", "concat"), (PARAMETERISED, "cross")] + [
        (model, CUT_BASED) for model in results if model not in (CUT_BASED, CUT_BASED_POOLED)
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
            for key in LIMIT_FIGURES:
                test = log_ratio([figures(first[f])[key] for f in folds], [figures(second[f])[key] for f in folds], ratio)
                entry[key.replace("_fb", "_ratio")] = {**test, **power(test, ratio)}
            if b != CUT_BASED:
                entry["auc_difference"] = paired_difference(
                    [figures(first[f])["auc"] for f in folds], [figures(second[f])["auc"] for f in folds], ratio)
            else:
                entry["background_ratio_at_cut_efficiency"] = log_ratio(
                    [(first[f].get("at_cut_efficiency") or {}).get("B") for f in folds],
                    [second[f].get("B") for f in folds], ratio)
            out[f"{a} vs {b} @ {mass:g}"] = entry
    tests = [test for entry in out.values() for test in entry.values() if isinstance(test, dict)]
    for test, adjusted in zip(tests, holm([test["p_value"] for test in tests])):
        test["p_holm"] = adjusted
        test["significant_holm"] = None if adjusted is None else bool(adjusted < ALPHA)
    return out


def power(test, test_train_ratio):
    """The power analysis of a log-ratio test: the smallest ratio today's pairs detect, and the pairs
    a 10% and a 20% ratio would need (None: beyond what more folds of this sample can give)."""
    n, sd = test["n_pairs"], test.get("sd")
    detectable = detectable_difference(sd, n, test_train_ratio)
    return {"detectable_ratio": None if detectable is None else float(np.exp(detectable)),
            "pairs_for_10_percent": pairs_needed(sd, np.log(1.10), test_train_ratio),
            "pairs_for_20_percent": pairs_needed(sd, np.log(1.20), test_train_ratio)}


# --- command line ----------------------------------------------------------------------------------------------


def _evaluate_file(job):
    path, min_tags, *options = job
    return evaluate_training(in_tag_region(read_prediction(path), min_tags), *options)


def _cut_based(job):
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
    parser.add_argument("--min-events", type=float, default=MIN_BACKGROUND_EVENTS,
                        help="N_eff floor of the background on the test fold, for the networks' score bins and "
                        f"best cut and for the cut-based selection alike (default: {MIN_BACKGROUND_EVENTS})")
    parser.add_argument("--min-tags", type=int, default=0,
                        help="evaluate only the copies with at least this many b-tagged subjets, networks and cuts "
                        "alike (a region inside the one the study truth-tagged into; default: all)")
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
    folds_at = {mass: sorted({fold for _, m, fold, _ in jobs if m == mass}) for mass in args.masses}
    results, curves = {}, {}
    # one process per core: the trainings are independent; the cuts first, since each training is also
    # evaluated at its fold's cut-based signal efficiency
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        cut_masses = [mass for mass in args.masses if folds_at[mass]]
        cuts = pool.map(_cut_based, [(args.data, mass, folds_at[mass], args.folds, args.luminosity, args.min_events,
                                      args.min_tags)
                                     for mass in cut_masses])
        for mass, (by_fold, pooled) in zip(cut_masses, tqdm(cuts, total=len(cut_masses), desc="optimising cuts",
                                                            unit="mass", disable=None)):
            results.setdefault(CUT_BASED, {})[mass] = by_fold
            if pooled is not None:
                results.setdefault(CUT_BASED_POOLED, {})[mass] = {0: pooled}

        def cut_efficiency(mass, fold):
            return results.get(CUT_BASED, {}).get(mass, {}).get(fold, {}).get("signal_efficiency")

        evaluated = pool.map(_evaluate_file, [(path, args.min_tags, args.luminosity, args.bins, args.min_events,
                                               cut_efficiency(mass, fold)) for _, mass, fold, path in jobs])
        for (model, mass, fold, _), (entry, curve) in zip(jobs, tqdm(evaluated, total=len(jobs), desc="evaluating trainings",
                                                                      unit="file", disable=None)):
            results.setdefault(model, {}).setdefault(mass, {})[fold] = entry
            if mass == args.ref_mass:
                curves.setdefault(model, []).append(curve)

    summary = {
        "luminosity_fb": args.luminosity,
        "masses": args.masses,
        "min_background_events": args.min_events,
        "n_folds": args.folds,
        "summary": {model: {f"{mass:g}": summarise(by_mass[mass]) for mass in args.masses if mass in by_mass}
                    for model, by_mass in results.items()},
        "comparisons": comparisons(results, args.masses, args.folds),
        "training_background": training_composition(args.data, args.luminosity),
        "per_training": {model: {f"{mass:g}": {str(f): e for f, e in by_fold.items()} for mass, by_fold in by_mass.items()}
                         for model, by_mass in results.items()},
    }
    (out / "img").mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(jsonable(summary), indent=1, sort_keys=True) + "\n")
    plots.limit_vs_mass(summary, out / "img" / "limit_vs_mass.png", "limit_fb", "with background MC stat. uncertainty")
    plots.limit_vs_mass(summary, out / "img" / "limit_vs_mass_no_mc_stat.png", "limit_no_mc_stat_fb",
                        "without background MC stat. uncertainty")
    plots.limit_vs_mass(summary, out / "img" / "limit_vs_mass_syst.png", "limit_syst_fb",
                        "with MC stat. and systematic uncertainties (b-tagging, background normalisation)")
    plots.significance_vs_mass(summary, out / "img" / "significance_vs_mass.png")
    if curves:
        reference = results.get(CUT_BASED, {}).get(args.ref_mass, {})
        plots.roc_at(curves, summary, reference, args.ref_mass, out / "img" / f"roc_mH{args.ref_mass:g}.png")
    (out / "results.md").write_text(report.markdown(summary))
    print(f"wrote {out / 'results.json'}, {out / 'results.md'} and the plots in {out / 'img'}")


if __name__ == "__main__":
    main()
