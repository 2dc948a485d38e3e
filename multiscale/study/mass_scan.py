"""Evaluate the mass scan (the workflow's evaluate rule, ``workflow/Snakefile``): per model, mass point and fold the
weighted ROC figures, the rejection at 30% and 50% signal efficiency with its bootstrap uncertainty, the best
S/sqrt(B) and the expected 95% CL limits (asymptotic CLs): binned score, and from a smooth fit of the
background's m_JJ after the score cut (with the check that the cut does not sculpt m_JJ); per mass point and fold
the cut-based selection, optimised on the other folds and evaluated on this one; paired comparisons (limits:
cross vs concat, parameterised vs per-mass cross, ML vs cuts; rejections: fusion vs concatenation and vs each
scale alone); plots.

Every choice on validation, never on test: training r is tested on fold r and predicts its validation fold
(r + 1) % folds, which it did not train on (``OUT/.../pred_validation.root``, ``pred_mH<m>_validation.root``);
its best score cut and the score bins of its limit are chosen there. The cuts are optimised on the folds other than
the test fold (they train on nothing).

The limits combine tag categories (``--categories 3 4``: exactly 3 and 4 b-tagged subjets): each category's copies
get their own bins (the networks' score bins, the cut-based selection's count), each bin held to the N_eff floor,
and the likelihood, whose bins are independent, takes every category's bins side by side.

    python -m multiscale.study.mass_scan --out training/mass_scan --data datasets/mass_scan \\
        --masses 600 800 1000 1500 2000 --models kin jets concat cross cross_param

Layout read (written by the workflow): ``OUT/mH<m>/<model>_<features>_fold<f>/pred.root``,
``OUT/param/cross_param_<features>_fold<f>/pred_mH<m>.root``, and the events, file by file as the workflow hands
them (``--signal-events MASS FILE...`` per mass, ``--background-events``, ``--training-backgrounds``; files named
``<stem>_<chunk>.root``, chunk c in fold c % folds), or found under ``--data DIR``: ``truth_test/hh4b_mH<m>_*.root``
(or ``generated/``) the signal, every other file of ``truth_test/`` a background (one copy per b-tag class).
Writes ``OUT/results.json``, ``OUT/results.md`` and ``OUT/img/*.png``.
"""

import argparse
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..evaluation import cutbased, smooth_background, tagger_comparison
from ..evaluation.io import Prediction, PredictionError, read_event_files, read_prediction
from ..evaluation.limits import limit_from_histograms, score_histograms, signal_cross_section, systematics_of
from ..evaluation.metrics import (
    MIN_BACKGROUND_EVENTS, SIGNAL_EFFICIENCIES, auc, effective_events, enough_events, roc, validated_significance,
    working_point,
)
from ..evaluation.report import jsonable
from ..evaluation.tagger_comparison import power
from ..definitions import BENCHMARK_MASS, LUMINOSITY_FB
from ..evaluation.yields import event_index, phase_space_of, restrict, sample_name, tag_count, yield_weights
from . import plots, report
from .compare import ALPHA, holm, log_ratio, paired_difference
from .workflow import MAX_TAGS, fold_of, validation_path

PARAMETERISED = "cross_param"
CUT_BASED = "cut-based"
CUT_BASED_POOLED = "cut-based pooled"  # the test folds' yields averaged over the folds: one value per mass
LIMIT_FIGURES = ("limit_fb", "limit_no_mc_stat_fb", "limit_syst_fb", "limit_smooth_fb")
# the claims of the paper, tested on rejection at fixed signal efficiency: fusion by cross-attention vs concatenation,
# and each fusion vs each scale alone
TAGGER_PAIRS = (("cross", "concat"), ("cross", "kin"), ("cross", "jets"), ("concat", "kin"), ("concat", "jets"))
# branches the cut-based selection and the yields need, read from the event files themselves
EVENT_BRANCHES = ("is_signal", "process", "phase_space", "gen_seed", "weight", "xsec_fb", "acceptance", "event_id",
                  "btag_weight_up", "btag_weight_down", *(
    f"{jet}_{field}" for jet in ("fj1", "fj2") for field in ("pt", "eta", "phi", "mass", "sdmass", "nbtag")))


def prediction_path(out, model, mass, fold, features):
    if model == PARAMETERISED:
        return Path(out) / "param" / f"{model}_{features}_fold{fold}" / f"pred_mH{mass:g}.root"
    return Path(out) / f"mH{mass:g}" / f"{model}_{features}_fold{fold}" / "pred.root"


def find_predictions(out, models, masses, features, given=None):
    """{model: {mass: {fold: path}}} of the prediction files present with their validation fold's
    (workflow.validation_path: where the choices are made); a test prediction without one is left out, named.
    ``given``: the files handed over (test and validation predictions, as the workflow declares them), instead of
    those found under ``out``; one that is no model's prediction at these masses is an error naming it."""
    present = Path.is_file if given is None else set(map(Path, given)).__contains__
    found, used = {}, set()
    for model in models:
        for mass in masses:
            for fold in range(100):
                path = prediction_path(out, model, mass, fold, features)
                if present(path) and present(validation_path(path)):
                    found.setdefault(model, {}).setdefault(mass, {})[fold] = path
                    used |= {path, validation_path(path)}
                elif present(path):
                    print(f"mass_scan: left out {path}: no prediction of its validation fold ({validation_path(path).name})")
    unknown = sorted(set(map(Path, given or ())) - used)
    if unknown:
        raise SystemExit(f"mass_scan: error: {unknown[0]} is not a prediction of the models {' '.join(models)} at the "
                         f"masses given under {out} (with its validation fold's)")
    return found


# --- one training ----------------------------------------------------------------------------------------------


def evaluate_training(prediction, validation, luminosity_fb, n_bins, min_events=MIN_BACKGROUND_EVENTS,
                      cut_efficiency=None, categories=(), mass=None, sculpting_plot=None):
    """Weighted ROC figures, S/sqrt(B) and expected limits of one training on its test fold ``prediction``, every
    choice made on its validation fold ``validation`` (the best score cut, the score bins of each tag category);
    and its ROC.

    ``min_events``: the N_eff floor of the score bins and of the best cut. ``cut_efficiency``: the
    signal efficiency of the cut-based selection on the same test fold, where the network's
    background is compared with the cuts' (``at_cut_efficiency``). ``categories``: the tag categories
    the limits combine (:func:`split_categories`; none: one set of score bins for every copy). ``mass``: m_H,
    for the smooth-fit limit after the best cut (:func:`smooth_fit`; its sculpting plot to ``sculpting_plot``)."""
    yields = yield_weights(prediction, luminosity_fb)
    event = event_index(prediction)  # truth-tagged copies of one event: one MC event in N_eff
    curve = roc(prediction.is_signal, prediction.score, sample_weight=yields, event=event)
    chosen_on = split_categories(validation, categories)
    per_category = {label: score_histograms(part, luminosity_fb, n_bins, min_events, validation=chosen_on[label])
                    for label, part in split_categories(prediction, categories).items()
                    if part.n_signal and label in chosen_on and chosen_on[label].n_signal}
    histograms = concatenate_categories(per_category) if per_category else score_histograms(
        prediction, luminosity_fb, n_bins, min_events, validation=validation if validation.n_signal else None)
    significance = validated_significance(validation, prediction, luminosity_fb, min_events)
    entry = {
        "file": str(prediction.path),
        "validation_file": str(validation.path),
        "auc": auc(prediction.is_signal, prediction.score, sample_weight=yields),
        "working_points": {f"{e:.2f}": working_point(curve, e, min_events) for e in SIGNAL_EFFICIENCIES},
        "significance": significance,
        **limits(histograms, signal_cross_section(prediction)),
    }
    if mass is not None:
        entry.update(smooth_fit(prediction, luminosity_fb, mass, threshold=significance["threshold"],
                                plot=sculpting_plot))
    if cut_efficiency is not None:
        point = working_point(curve, cut_efficiency, min_events)
        background = float(yields[~prediction.is_signal].sum())
        entry["at_cut_efficiency"] = {**point, "B": point["background_efficiency"] * background}
    return entry, curve


def limits(histograms, signal_xsec_fb):
    """The expected limits from one set of histograms: with the background MC statistical uncertainty,
    without it, and with it and the systematic uncertainties (limits.systematics_of); and the
    background MC statistics of the most signal-like bin (the one that drives the limit: the top bin of the last
    tag category when they are combined); and each tag category's bins and yields."""
    return {"categories": histograms.get("categories"),
            "limit": _limit_summary(limit_from_histograms(histograms, signal_xsec_fb)),
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


# --- the smooth background -------------------------------------------------------------------------------------


def smooth_fit(test, luminosity_fb, mass, threshold=None, passed=None, plot=None, title=""):
    """{limit_smooth, sculpting}: the expected limit with the background of the events passing ``score >=
    threshold`` (a cut chosen on validation) or the mask ``passed`` (the cuts without their m_JJ window) taken
    from a dijet-function fit of their m_JJ (smooth_background.smooth_background_limit; its ``note`` says
    where the m_JJ window is extrapolated), and whether that cut changes the background's m_JJ shape (chi2 test;
    its plot to ``plot``). No cut chosen on validation: no limit, with a note."""
    if threshold is None and passed is None:
        note = "no score cut was chosen on the validation sample"
        return {"limit_smooth": {"xsec_up_fb": None, "note": note}, "sculpting": None}
    # a fit that fails comes back with no limit and a note saying why
    limit = smooth_background.smooth_background_limit(test, luminosity_fb, mass, threshold=threshold, passed=passed)
    check = smooth_background.prediction_sculpting_check(test, luminosity_fb, threshold, passed=passed)
    if plot is not None:
        smooth_background.plot_sculpting(check, plot, title)
    keep = ("mu_up", "xsec_up_fb", "xsec_band_fb", "signal_xsec_fb", "note", "threshold", "background_model", "fit")
    return {"limit_smooth": {key: limit.get(key) for key in keep},
            "sculpting": {key: check[key] for key in ("chi2", "n_dof", "p_value", "after_effective_events")}}


# --- tag categories --------------------------------------------------------------------------------------------


def category_labels(categories):
    """The names of the tag categories whose lowest tag counts are ``categories`` (ascending; each up to the next,
    the last up to MAX_TAGS): [3, 4] -> ["3", "4"], [2, 3] -> ["2", "3-4"]."""
    highest = [*(lo - 1 for lo in categories[1:]), MAX_TAGS]
    return [f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in zip(categories, highest)]


def split_categories(prediction, categories):
    """{label: the copies of that tag category, with the yields they have in ``prediction`` (yields.restrict)}
    for the categories that hold copies; ``categories`` empty: {"all": prediction}. A copy's category is the
    number of its b-tagged subjets (fj1_nbtag + fj2_nbtag; truth tagging's ``tag_class``)."""
    if not categories:
        return {"all": prediction}
    tags = tag_count(prediction.arrays)
    category = np.searchsorted(categories, tags, side="right") - 1  # -1: below the first category
    return {label: restrict(prediction, category == k) for k, label in enumerate(category_labels(categories))
            if np.any(category == k)}


def concatenate_categories(per_category):
    """One set of histograms holding the bins of every tag category ({label: histograms}, limits.binned_yields)
    side by side: the binned likelihood treats bins independently, so its limit is the categories' combination.
    A category without signal or with a bin without background is left out (the first adds nothing that depends
    on the signal, the second cannot enter a likelihood): ``categories`` says which, and each one's bins and yields;
    when every category is left out they all stay, and the limit says why there is none."""

    def usable(h):
        return h["signal"].sum() > 0 and np.all(h["background"] > 0)

    kept = {label: h for label, h in per_category.items() if usable(h)} or per_category
    parts = list(kept.values())
    joined = {key: np.concatenate([h[key] for h in parts])
              for key in ("signal", "background", "background_sumw2", "background_effective_events")}
    names = set.intersection(*(set(h.get("variations") or {}) for h in parts))
    joined["variations"] = {name: {key: np.concatenate([h["variations"][name][key] for h in parts])
                                   for key in ("signal", "background")} for name in sorted(names)}
    joined["min_effective_events"] = parts[0]["min_effective_events"]
    joined["low_statistics"] = any(h["low_statistics"] for h in parts)
    joined["categories"] = {label: {"n_bins": len(h["background"]), "edges": [float(e) for e in h["edges"]],
                                    "S": float(h["signal"].sum()),
                                    "B": float(h["background"].sum()), "in_limit": label in kept}
                            for label, h in per_category.items()}
    return joined


# --- the cut-based reference ---------------------------------------------------------------------------------


def read_events(files, min_tags=0):
    """The events of schema files as a Prediction without a score (for the cut-based selection)."""
    return in_tag_region(read_event_files(files, EVENT_BRANCHES), min_tags)


def in_tag_region(prediction, min_tags):
    """The copies with >= ``min_tags`` b-tagged subjets, with their yields (0: all)."""
    if not min_tags:
        return prediction
    tags = tag_count(prediction.arrays)
    return restrict(prediction, tags >= min_tags)


def study_files(signal, backgrounds, training_backgrounds):
    """The event files of the study by sample: {"signal": {mass: files}, "backgrounds": the test copies of every
    background, "training_backgrounds": their training copies}, as the workflow hands them (Study)."""
    return {"signal": {float(mass): list(map(Path, files)) for mass, files in signal.items()},
            "backgrounds": list(map(Path, backgrounds)), "training_backgrounds": list(map(Path, training_backgrounds))}


def files_in(data, masses):
    """study_files of a study directory ``data`` written by the workflow: each mass's signal by the generator's
    name (truth-tagged like the background when the study did so, else as generated), and every other file of
    truth_test/ (truth_train_physical/) as background: a sample is never left out for its name."""
    data = Path(data)

    def backgrounds(directory):
        return [f for f in sorted((data / directory).glob("*.root")) if not f.name.startswith("hh4b")]

    signal = {mass: sorted(data.glob(f"truth_test/hh4b_mH{mass:g}_*.root")) or sorted(data.glob(f"generated/hh4b_mH{mass:g}_*.root"))
              for mass in masses}
    return study_files(signal, backgrounds("truth_test"), backgrounds("truth_train_physical"))


def event_files(files, mass, folds, n_folds):
    """The signal of ``mass`` and the backgrounds (study_files ``files``) in the folds ``folds``."""
    chosen = [*files["signal"].get(float(mass), []), *files["backgrounds"]]
    return [f for f in chosen if fold_of(f, n_folds) in folds]


def cut_based_folds(files, mass, folds, n_folds, luminosity_fb, min_events=MIN_BACKGROUND_EVENTS, min_tags=0,
                    categories=(), sculpting_plot=None):
    """({fold: result}, pooled) of the cuts optimised on the other folds' events (never on the test fold) and
    evaluated (S/sqrt(B), limits) on the fold; every fold's events are read once. One selection (S/sqrt(B) over
    the region); its limit counts the selected events of each tag category ``categories`` apart (split_categories).
    Its smooth-fit limit fits the m_JJ of the events passing the selection without its m_JJ window, as the
    networks' events after their score cut (:func:`smooth_fit`; the first fold's sculpting plot to
    ``sculpting_plot``).

    The networks and the cuts are held to one N_eff floor ``min_events`` on the test fold: the cuts
    are chosen among the working points keeping (n_folds - 1) x min_events on the n_folds - 1 folds
    they are optimised on. ``pooled``: the test folds' yields averaged over the folds, each with its
    own fold's selection (n_folds times the MC statistics of one fold), and their limits."""
    events = {fold: read_events(event_files(files, mass, [fold], n_folds), min_tags) for fold in range(n_folds)}
    results, parts = {}, {}
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
        per_category = {label: cutbased.cut_based_histograms(part, selection, luminosity_fb, min_background_events=min_events)
                        for label, part in split_categories(test, categories).items()}
        result.update(limits(concatenate_categories(per_category), signal_cross_section(test)))
        without_window = cutbased.select(test.arrays, replace(selection, mjj_window=(0, np.inf)))
        result.update(smooth_fit(test, luminosity_fb, mass, passed=without_window,
                                 plot=sculpting_plot if fold == folds[0] else None, title=selection.short()))
        results[fold] = result
        for label, histograms in per_category.items():
            parts.setdefault(label, []).append(histograms)
    selected = [results[fold] for fold in folds if results[fold].get("selection") is not None]
    return results, pooled_cut_based(parts, selected, signal_cross_section(events[folds[0]]), min_events) if parts else None


def pooled_cut_based(per_category, fold_results, signal_xsec_fb, min_events):
    """The test folds' cut-based counts averaged over the folds, per tag category ({label: the folds' histograms};
    a fold without copies in a category counts 0 there), and their combined limit; S, B and the background's N_eff
    of the whole selection from the folds' results (``fold_results``: cutbased.evaluate's)."""
    n = len(fold_results)
    pooled = concatenate_categories({label: pool_folds(parts, n, min_events) for label, parts in per_category.items()})
    s, b = (float(np.mean([result[key] for result in fold_results])) for key in ("S", "B"))
    sumw2 = sum(result["B_stat_uncertainty"] ** 2 for result in fold_results) / n**2
    return {"folds_pooled": n, "S": s, "B": b, "significance": s / np.sqrt(b) if b > 0 else None,
            "background_effective_events": float(effective_events(b, sumw2)), **limits(pooled, signal_xsec_fb)}


def pool_folds(histograms, n, min_events):
    """One count from ``n`` test folds' cut-based counts (``histograms``: those of the folds with any) averaged
    over the folds (their yields are each an estimate of the whole sample's: the mean has the sumw2 sum / n^2)."""
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
    return pooled


def training_composition(files, luminosity_fb):
    """What the networks saw against what the analysis region holds: per background sample, its training copies
    (count and share) and its share of the test copies' expected yield (the physical region), over every fold
    (``files``: study_files)."""

    def per_sample(paths):
        if not paths:
            return None
        events = read_events(paths)
        names = [str(sample_name(p, s)) for p, s in zip(events.arrays["process"], phase_space_of(events))]
        return events, np.array(names)

    train, test = per_sample(files["training_backgrounds"]), per_sample(files["backgrounds"])
    if train is None or test is None:
        return {}
    yields = yield_weights(test[0], luminosity_fb)
    total = yields.sum()
    return {name: {"training_copies": int((train[1] == name).sum()),
                   "training_share": float((train[1] == name).mean()),
                   "region_yield_share": float(yields[test[1] == name].sum() / total)}
            for name in sorted(set(test[1]))}


# --- summaries and comparisons ---------------------------------------------------------------------------------


def usable_spread(values, log_spread=False):
    """{mean, std, n} of the usable values (None and non-finite dropped); ``log_spread``: also ``log_std``, the
    standard deviation of their logarithms (the repeat-to-repeat spread of a limit, in log ratio)."""
    usable = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if len(usable) == 0:
        return {"mean": None, "std": None, "n": 0, **({"log_std": None} if log_spread else {})}
    spread = {"mean": float(usable.mean()), "std": float(usable.std(ddof=1)) if len(usable) > 1 else None,
              "n": int(len(usable))}
    if log_spread:
        positive = np.log(usable[usable > 0])
        spread["log_std"] = float(positive.std(ddof=1)) if len(positive) > 1 else None
    return spread


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
        "limit_smooth_fb": (entry.get("limit_smooth") or {}).get("xsec_up_fb"),
        "sculpting_p_value": (entry.get("sculpting") or {}).get("p_value"),
        # the test-sample uncertainty of the rejection (event bootstrap, sd of its log)
        **{f"rejection_sd_log_{key}": spread.get("sd_log") for key, spread in (entry.get("rejection_bootstrap") or {}).items()},
        "top_bin_effective_events": entry.get("top_bin_effective_events"),
        # a network's background where the cuts' signal efficiency is (the cuts: their own)
        "background_at_cut_efficiency": (entry.get("at_cut_efficiency") or {}).get("B", entry.get("B")),
    }


def summarise(per_fold):
    """{figure: spread} over the folds of one model at one mass (the limits with their spread in log)."""
    names = sorted({name for entry in per_fold.values() for name in figures(entry)})
    return {name: usable_spread([figures(entry).get(name) for entry in per_fold.values()], name in LIMIT_FIGURES)
            for name in names}


def test_train_ratio(n_folds):
    """n_test / n_train of the study's trainings (Nadeau-Bengio): one test fold against the n_folds - 2 folds
    trained on (the validation fold is neither)."""
    return 1.0 / (n_folds - 2)


def comparisons(results, masses, n_folds):
    """Paired over the common folds: cross vs concat, cross_param vs cross, each model vs the cuts.

    Limits (with and without MC statistics, with systematics, from the smooth fit) compare by ratio, the AUC
    by difference, and a network's background at the cuts' signal efficiency by ratio to the cuts' background;
    each with the corrected resampled t-test (the trainings share training folds), the p-values then
    Holm-adjusted over every test of the study, and the power of the test at today's spread (noncentral t)."""
    ratio = test_train_ratio(n_folds)
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


# --- taggers at fixed signal efficiency ---------------------------------------------------------------------


def read_test_sample(paths, min_tags):
    """The copies in the tag region of one test prediction, or of several (a list: the out-of-fold predictions of
    one model, concatenated before the region's yields are taken, so each sample keeps its cross section)."""
    if isinstance(paths, (list, tuple)):
        return in_tag_region(Prediction.concatenate([read_prediction(p) for p in paths]), min_tags)
    return in_tag_region(read_prediction(paths), min_tags)


def rejection_bootstraps(paths, min_tags, luminosity_fb, n_bootstrap=tagger_comparison.N_BOOTSTRAP):
    """The taggers of one (mass, test fold), ``paths``: {model: test prediction, or a list of them}, at fixed signal
    efficiency: {"rejections": {model: {eps_S: rejection}}, "per_model": {model: rejection_interval}, "ratios": {(A,
    B): ratio_interval}} from one bootstrap over the test events (the truth-tag copies of an event drawn together,
    each sample held at its cross section), the same draws for every tagger, so the ratios are paired."""
    predictions = {model: read_test_sample(path, min_tags) for model, path in paths.items()}
    try:
        is_signal, weight, group, scores = tagger_comparison.common_test_sample(predictions, luminosity_fb)
    except PredictionError as error:  # not one test sample (another selection): each tagger on its own, no paired ratio
        alone = [rejection_bootstraps({model: path}, min_tags, luminosity_fb, n_bootstrap) for model, path in paths.items()]
        return {"rejections": {m: r for part in alone for m, r in part["rejections"].items()},
                "per_model": {m: r for part in alone for m, r in part["per_model"].items()}, "ratios": {},
                "note": str(error)}
    first = next(iter(predictions.values()))
    sample = np.asarray(first.arrays["process"], dtype=np.int64) * 100 + phase_space_of(first)
    replicates = tagger_comparison.bootstrap_rejections(scores, is_signal, weight, group, n_bootstrap=n_bootstrap,
                                                        stratum=sample)
    return {"rejections": {model: {eff: point["rejection"] for eff, point in
                                   tagger_comparison.rejections(is_signal, score, weight, group).items()}
                           for model, score in scores.items()},
            "per_model": {model: tagger_comparison.rejection_interval(values) for model, values in replicates.items()},
            "ratios": {(a, b): tagger_comparison.ratio_interval(replicates[a], replicates[b])
                       for a, b in TAGGER_PAIRS if a in replicates and b in replicates}}


def pooled_test_samples(jobs, masses):
    """Per mass, {model: its test predictions over the folds every model was tested on}: the out-of-fold
    predictions, one large test sample common to the taggers, each event scored by the training that did not see
    it (the training of its own fold). None for a mass with fewer than two such folds."""
    pooled = {}
    for mass in masses:
        by_model = {}
        for model, m, fold, path in jobs:
            if m == mass:
                by_model.setdefault(model, {})[fold] = path
        folds = sorted(set.intersection(*(set(f) for f in by_model.values()))) if by_model else []
        if len(folds) >= 2:
            pooled[mass] = {model: [files[f] for f in folds] for model, files in by_model.items()}
    return pooled


def pooled_rejections(boot, n_folds_pooled):
    """The rejection_bootstraps of a pooled test sample as the summary keeps it: each tagger's rejection at each
    signal efficiency with its bootstrap interval, and the paired ratios of TAGGER_PAIRS."""
    def at(intervals, values):
        return {f"{eff:.2f}": {"rejection": values.get(eff) if values else None, **interval}
                for eff, interval in intervals.items()}
    return {"folds_pooled": n_folds_pooled,
            "per_model": {model: at(intervals, boot["rejections"][model]) for model, intervals in boot["per_model"].items()},
            "ratios": {f"{a} / {b}": {f"{eff:.2f}": {"ratio": _ratio(boot["rejections"][a][eff], boot["rejections"][b][eff]),
                                                    **interval} for eff, interval in by_eff.items()}
                       for (a, b), by_eff in boot["ratios"].items()},
            **({"note": boot["note"]} if "note" in boot else {})}


def _ratio(a, b):
    return float(a / b) if a is not None and b and np.isfinite(a) and np.isfinite(b) else None


def tagger_comparisons(bootstraps, masses, n_folds):
    """Per pair of TAGGER_PAIRS and mass, at each signal efficiency: repeat r of A against repeat r of B (the same
    test fold r), the paired t-test of the log rejection ratio with the Nadeau-Bengio correction (the study's
    repeats are k-fold trainings: they share training events), its power from the noncentral t
    (tagger_comparison.compare_repeats), and the test-sample uncertainty of each repeat's ratio (the event
    bootstrap's sd of the log ratio and 68% interval); p-values Holm-adjusted over these tests.
    ``bootstraps``: {mass: {fold: rejection_bootstraps}}."""
    ratio, out = test_train_ratio(n_folds), {}
    for a, b in TAGGER_PAIRS:
        for mass in masses:
            by_fold = {fold: boot for fold, boot in bootstraps.get(mass, {}).items()
                       if a in boot["rejections"] and b in boot["rejections"]}
            if not by_fold:
                continue
            folds = sorted(by_fold)
            entry = {"folds": folds, "repeats": tagger_comparison.SHARED, "test_train_ratio": ratio}
            for eff in tagger_comparison.SIGNAL_EFFICIENCIES:
                test = tagger_comparison.compare_repeats([by_fold[f]["rejections"][a][eff] for f in folds],
                                                         [by_fold[f]["rejections"][b][eff] for f in folds],
                                                         tagger_comparison.SHARED, ratio)
                bootstrap = {f: by_fold[f]["ratios"][(a, b)][eff] for f in folds if (a, b) in by_fold[f]["ratios"]}
                sd_logs = [v["sd_log"] for v in bootstrap.values() if v["sd_log"] is not None]
                entry[f"{eff:.2f}"] = {**test, "bootstrap_sd_log": float(np.mean(sd_logs)) if sd_logs else None,
                                       "bootstrap": bootstrap}
            out[f"{a} vs {b} @ {mass:g}"] = entry
    tests = [entry[key] for entry in out.values() for key in entry if isinstance(entry[key], dict)]
    for test, adjusted in zip(tests, holm([test["p_value"] for test in tests])):
        test["p_holm"] = adjusted
        test["significant_holm"] = None if adjusted is None else bool(adjusted < ALPHA)
    return out


# --- command line ----------------------------------------------------------------------------------------------


def _evaluate_file(job):
    path, min_tags, *options, categories, mass, plot = job
    test, validation = (in_tag_region(read_prediction(p), min_tags) for p in (path, validation_path(path)))
    return evaluate_training(test, validation, *options, categories=categories, mass=mass, sculpting_plot=plot)


def _cut_based(job):
    return cut_based_folds(*job)


def _rejection_bootstraps(job):
    return rejection_bootstraps(*job)


def sculpting_plot(out, model, mass):
    """img/sculpting_<model>_mH<m>.png: the background's m_JJ before and after the cut of the lowest fold."""
    return Path(out) / "img" / f"sculpting_{model.replace(' ', '_')}_mH{mass:g}.png"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m multiscale.study.mass_scan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the study's output directory (trainings, results)")
    parser.add_argument("--predictions", nargs="+", metavar="FILE",
                        help="the prediction files to evaluate, test and validation folds (default: those found under "
                        "--out)")
    parser.add_argument("--data", help="the study's event directory (generated/, truth_test/, truth_train_physical/): "
                        "each mass's signal by its name, every other file as background; or give the files:")
    parser.add_argument("--signal-events", nargs="+", action="append", default=[], metavar=("MASS", "FILE"),
                        help="the signal's test files at MASS (once per mass)")
    parser.add_argument("--background-events", nargs="+", default=[], metavar="FILE",
                        help="the test copies of every background sample (the cut-based reference, the test sets)")
    parser.add_argument("--training-backgrounds", nargs="+", default=[], metavar="FILE",
                        help="the training copies of every background sample (what the networks saw)")
    parser.add_argument("--masses", type=float, nargs="+", required=True)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--features", default="paperb")
    parser.add_argument("--folds", type=int, default=5, help="folds the events were cut into")
    parser.add_argument("--ref-mass", type=float, default=BENCHMARK_MASS, help="mass point of the ROC plot (default %(default)g)")
    parser.add_argument("--luminosity", type=float, default=LUMINOSITY_FB, help=f"fb^-1 (default: {LUMINOSITY_FB:g})")
    parser.add_argument("--bins", type=int, default=10, help="score bins before merging, for the limits")
    parser.add_argument("--min-events", type=float, default=MIN_BACKGROUND_EVENTS,
                        help="N_eff floor of the background on the test fold, for the networks' score bins and "
                        f"best cut and for the cut-based selection alike (default: {MIN_BACKGROUND_EVENTS})")
    parser.add_argument("--min-tags", type=int,
                        help="evaluate only the copies with at least this many b-tagged subjets, networks and cuts "
                        "alike (a region inside the one the study truth-tagged into; default: the first of "
                        "--categories, else all)")
    parser.add_argument("--categories", type=int, nargs="+", default=[], metavar="TAGS",
                        help="the tag categories the limits combine, by their lowest number of b-tagged subjets, each "
                        "up to the next (3 4: exactly 3, and 4); default: one category, every copy")
    parser.add_argument("--bootstrap", type=int, default=tagger_comparison.N_BOOTSTRAP,
                        help="replicates of the bootstrap over test events of the rejections (default: "
                        f"{tagger_comparison.N_BOOTSTRAP})")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="parallel processes (default: all cores)")
    args = parser.parse_args(argv)
    categories = args.categories
    if args.min_tags is None:
        args.min_tags = categories[0] if categories else 0
    if categories and (categories != sorted(set(categories)) or categories[0] != args.min_tags
                       or categories[-1] > MAX_TAGS):
        parser.error(f"--categories {' '.join(map(str, categories))}: give ascending tag counts from --min-tags "
                     f"{args.min_tags} up to {MAX_TAGS}, e.g. --categories {args.min_tags} "
                     f"{' '.join(map(str, range(args.min_tags + 1, MAX_TAGS + 1)))}".rstrip())
    if bool(args.data) == bool(args.signal_events or args.background_events):
        parser.error("give either --data DIR or the files (--signal-events MASS FILE... per mass, --background-events "
                     "FILE..., --training-backgrounds FILE...)")
    if args.data:
        args.files = files_in(args.data, args.masses)
    else:
        signal = {float(mass): files for mass, *files in args.signal_events}
        missing = [f"{mass:g}" for mass in args.masses if not signal.get(mass)]
        if missing or not args.background_events:
            parser.error(f"no signal files at m_H = {', '.join(missing)} GeV (--signal-events MASS FILE...)" if missing
                         else "no background files (--background-events FILE...)")
        args.files = study_files(signal, args.background_events, args.training_backgrounds)
    return args


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    found = find_predictions(out, args.models, args.masses, args.features, args.predictions)
    if not found:
        raise SystemExit(f"mass_scan: error: no prediction file under {out} for models {args.models}")
    jobs = [(model, mass, fold, path) for model, by_mass in found.items() for mass, by_fold in by_mass.items()
            for fold, path in by_fold.items()]
    folds_at = {mass: sorted({fold for _, m, fold, _ in jobs if m == mass}) for mass in args.masses}
    results, curves = {}, {}
    (out / "img").mkdir(parents=True, exist_ok=True)
    # one process per core: the trainings are independent; the cuts first, since each training is also
    # evaluated at its fold's cut-based signal efficiency
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        cut_masses = [mass for mass in args.masses if folds_at[mass]]
        cuts = pool.map(_cut_based, [(args.files, mass, folds_at[mass], args.folds, args.luminosity, args.min_events,
                                      args.min_tags, args.categories, sculpting_plot(out, CUT_BASED, mass))
                                     for mass in cut_masses])
        for mass, (by_fold, pooled) in zip(cut_masses, tqdm(cuts, total=len(cut_masses), desc="optimising cuts",
                                                            unit="mass", disable=None)):
            results.setdefault(CUT_BASED, {})[mass] = by_fold
            if pooled is not None:
                results.setdefault(CUT_BASED_POOLED, {})[mass] = {0: pooled}

        def cut_efficiency(mass, fold):
            return results.get(CUT_BASED, {}).get(mass, {}).get(fold, {}).get("signal_efficiency")

        evaluated = pool.map(_evaluate_file, [(path, args.min_tags, args.luminosity, args.bins, args.min_events,
                                               cut_efficiency(mass, fold), args.categories, mass,
                                               sculpting_plot(out, model, mass) if fold == min(found[model][mass]) else None)
                                              for model, mass, fold, path in jobs])
        for (model, mass, fold, _), (entry, curve) in zip(jobs, tqdm(evaluated, total=len(jobs), desc="evaluating trainings",
                                                                      unit="file", disable=None)):
            results.setdefault(model, {}).setdefault(mass, {})[fold] = entry
            if mass == args.ref_mass:
                curves.setdefault(model, []).append(curve)
        # the taggers of each test fold together: one bootstrap over its events for all of them
        test_folds = [(mass, fold) for mass in args.masses for fold in folds_at[mass]]
        bootstraps = pool.map(_rejection_bootstraps, [
            ({model: path for model, m, f, path in jobs if (m, f) == (mass, fold)}, args.min_tags, args.luminosity,
             args.bootstrap) for mass, fold in test_folds])
        by_test_fold = {}
        for (mass, fold), boot in zip(test_folds, tqdm(bootstraps, total=len(test_folds), desc="bootstrapping rejections",
                                                       unit="fold", disable=None)):
            by_test_fold.setdefault(mass, {})[fold] = boot
            for model, intervals in boot["per_model"].items():
                results[model][mass][fold]["rejection_bootstrap"] = {
                    f"{eff:.2f}": {"rejection": boot["rejections"][model][eff], **interval,
                                   **({"note": boot["note"]} if "note" in boot else {})}
                    for eff, interval in intervals.items()}

        # the out-of-fold predictions together: one large test sample common to the taggers, no event seen by the
        # training that scored it
        pooled_paths = pooled_test_samples(jobs, args.masses)
        pooled = dict(zip(pooled_paths, tqdm(pool.map(_rejection_bootstraps, [
            (paths, args.min_tags, args.luminosity, args.bootstrap) for paths in pooled_paths.values()]),
            total=len(pooled_paths), desc="bootstrapping the pooled test sample", unit="mass", disable=None)))

    summary = {
        "luminosity_fb": args.luminosity,
        "masses": args.masses,
        "min_background_events": args.min_events,
        # the analysis region and the tag categories the limits combine
        "min_tags": args.min_tags,
        "tag_categories": category_labels(args.categories) if args.categories else ["all"],
        "n_folds": args.folds,
        "summary": {model: {f"{mass:g}": summarise(by_mass[mass]) for mass in args.masses if mass in by_mass}
                    for model, by_mass in results.items()},
        "comparisons": comparisons(results, args.masses, args.folds),
        "tagger_comparisons": tagger_comparisons(by_test_fold, args.masses, args.folds),
        "pooled_rejections": {f"{mass:g}": pooled_rejections(boot, len(pooled_paths[mass][next(iter(boot["rejections"]))]))
                              for mass, boot in pooled.items()},
        "bootstrap_replicates": args.bootstrap,
        "training_background": training_composition(args.files, args.luminosity),
        "per_training": {model: {f"{mass:g}": {str(f): e for f, e in by_fold.items()} for mass, by_fold in by_mass.items()}
                         for model, by_mass in results.items()},
    }
    (out / "results.json").write_text(json.dumps(jsonable(summary), indent=1, sort_keys=True) + "\n")
    plots.limit_vs_mass(summary, out / "img" / "limit_vs_mass.png", "limit_fb", "with background MC stat. uncertainty")
    plots.limit_vs_mass(summary, out / "img" / "limit_vs_mass_no_mc_stat.png", "limit_no_mc_stat_fb",
                        "without background MC stat. uncertainty")
    plots.limit_vs_mass(summary, out / "img" / "limit_vs_mass_syst.png", "limit_syst_fb",
                        "with MC stat. and systematic uncertainties (b-tagging, background normalisation)")
    plots.limit_vs_mass(summary, out / "img" / "limit_vs_mass_smooth.png", "limit_smooth_fb",
                        "background from a dijet-function fit of m_JJ after the cut chosen on validation")
    plots.significance_vs_mass(summary, out / "img" / "significance_vs_mass.png")
    if curves:
        reference = results.get(CUT_BASED, {}).get(args.ref_mass, {})
        plots.roc_at(curves, summary, reference, args.ref_mass, out / "img" / f"roc_mH{args.ref_mass:g}.png")
    (out / "results.md").write_text(report.markdown(summary))
    print(f"wrote {out / 'results.json'}, {out / 'results.md'} and the plots in {out / 'img'}")


if __name__ == "__main__":
    main()
