"""The mass scan's trainings summarised and compared: per model and mass the spread of each figure over the folds;
paired tests over the common folds (limits by ratio, the AUC by difference, a network against the cuts) with the
Nadeau-Bengio correction, since the folds' trainings share training events (study.compare), their power from the
noncentral t (evaluation.tagger_comparison.power); and the taggers at fixed signal efficiency, each test fold's
rejections from one bootstrap over its events (evaluation.tagger_comparison), repeat against repeat.
"""

import numpy as np

from ..evaluation import tagger_comparison
from ..evaluation.io import PredictionError
from ..evaluation.summary import usable_spread
from ..evaluation.tagger_comparison import power
from ..evaluation.yields import phase_space_of
from .compare import ALPHA, holm, log_ratio, paired_difference
from .report import CUT_BASED, CUT_BASED_POOLED
from .predictions import PARAMETERISED

LIMIT_FIGURES = ("limit_fb", "limit_no_mc_stat_fb", "limit_syst_fb", "limit_smooth_fb", "limit_smooth_decorrelated_fb",
                 "limit_pass_fraction_fb")
# the claims of the paper, tested on rejection at fixed signal efficiency: fusion by cross-attention vs concatenation,
# and each fusion vs each scale alone
TAGGER_PAIRS = (("cross", "concat"), ("cross", "kin"), ("cross", "jets"), ("concat", "kin"), ("concat", "jets"))


# --- summaries and paired tests over the folds --------------------------------------------------------------------


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
        # after the mass-decorrelated cut (networks only: evaluation.decorrelation)
        "limit_smooth_decorrelated_fb": (entry.get("limit_smooth_decorrelated") or {}).get("xsec_up_fb"),
        "sculpting_decorrelated_p_value": (entry.get("sculpting_decorrelated") or {}).get("p_value"),
        "limit_pass_fraction_fb": (entry.get("limit_pass_fraction") or {}).get("xsec_up_fb"),
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


def rejection_bootstraps(predictions, luminosity_fb, n_bootstrap=tagger_comparison.N_BOOTSTRAP):
    """The taggers of one (mass, test fold), ``predictions``: {model: its test sample (predictions.read_test_sample)},
    at fixed signal efficiency: {"rejections": {model: {eps_S: rejection}}, "per_model": {model: rejection_interval},
    "ratios": {(A, B): ratio_interval}} from one bootstrap over the test events (the truth-tag copies of an event
    drawn together, each sample held at its cross section), the same draws for every tagger, so the ratios are
    paired."""
    try:
        is_signal, weight, group, scores = tagger_comparison.common_test_sample(predictions, luminosity_fb)
    except PredictionError as error:  # not one test sample (another selection): each tagger on its own, no paired ratio
        alone = [rejection_bootstraps({model: prediction}, luminosity_fb, n_bootstrap)
                 for model, prediction in predictions.items()]
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
