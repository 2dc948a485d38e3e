"""One training of the mass scan evaluated: on its test fold, every choice made on its validation fold (the best
score cut, the score bins of each tag category); the weighted ROC figures (evaluation.summary.roc_figures, as
the evaluation command's), S/sqrt(B), the expected limits of the tag categories combined, and the limit from a
smooth fit of the background's m_JJ after the cut. The cut-based selection (study.cut_folds) shares the limits,
the smooth fit and the categories.
"""

import numpy as np

from ..evaluation import decorrelation, smooth_background
from ..evaluation.limits import limit_from_histograms, score_histograms, signal_cross_section, systematics_of
from ..evaluation.metrics import MIN_BACKGROUND_EVENTS, SIGNAL_EFFICIENCIES, validated_significance, working_point
from ..evaluation.summary import roc_figures
from ..evaluation.yields import restrict, tag_count
from .workflow import MAX_TAGS


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
    yields, _, curve, figures = roc_figures(prediction, luminosity_fb, SIGNAL_EFFICIENCIES, min_events)
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
        **figures,
        "significance": significance,
        **limits(histograms, signal_cross_section(prediction)),
    }
    if mass is not None:
        entry.update(smooth_fit(prediction, luminosity_fb, mass, threshold=significance["threshold"],
                                plot=sculpting_plot))
        entry.update(decorrelated_smooth_fit(prediction, validation, luminosity_fb, mass, significance["threshold"],
                                             plot=None if sculpting_plot is None else decorrelated_plot(sculpting_plot)))
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

# what results.json keeps of a smooth-fit limit
SMOOTH_LIMIT_KEYS = ("mu_up", "xsec_up_fb", "xsec_band_fb", "signal_xsec_fb", "note", "threshold", "background_model",
                     "fit")


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
    return {"limit_smooth": {key: limit.get(key) for key in SMOOTH_LIMIT_KEYS},
            "sculpting": {key: check[key] for key in ("chi2", "n_dof", "p_value", "after_effective_events")}}


def decorrelated_plot(sculpting_plot):
    """The sculpting plot of the mass-decorrelated cut beside the plain cut's: decorrelated_<its name>."""
    return sculpting_plot.with_name(f"decorrelated_{sculpting_plot.name}")


def decorrelated_smooth_fit(test, validation, luminosity_fb, mass, threshold, plot=None):
    """{limit_smooth_decorrelated, limit_pass_fraction, sculpting_decorrelated, decorrelated_cut}: after the
    mass-decorrelated cut (evaluation.decorrelation) with the background efficiency of ``score >= threshold``, both
    set on ``validation`` and applied to ``test``: :func:`smooth_fit` (the fit of the events after the cut), and the
    limit with the fit of the background before the cut times the fraction passing it (the pass-fraction method,
    smooth_background_limit's ``shape_before_cut``). No threshold: no limits, with smooth_fit's note."""
    if threshold is None:
        none = smooth_fit(test, luminosity_fb, mass)["limit_smooth"]
        return {"limit_smooth_decorrelated": none, "limit_pass_fraction": none, "sculpting_decorrelated": None,
                "decorrelated_cut": None}
    cut = decorrelation.decorrelated_cut_for(validation, luminosity_fb, threshold)
    passed = decorrelation.passing(test, cut)
    fitted = smooth_fit(test, luminosity_fb, mass, passed=passed, plot=plot, title="mass-decorrelated cut")
    pass_fraction = smooth_background.smooth_background_limit(test, luminosity_fb, mass, passed=passed,
                                                              shape_before_cut=True)
    return {"limit_smooth_decorrelated": fitted["limit_smooth"], "sculpting_decorrelated": fitted["sculpting"],
            "limit_pass_fraction": {key: pass_fraction.get(key) for key in (*SMOOTH_LIMIT_KEYS, "pass_fraction")},
            "decorrelated_cut": cut.summary()}


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
