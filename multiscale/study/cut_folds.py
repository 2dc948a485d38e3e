"""The cut-based reference of the mass scan, fold by fold: the cuts optimised on the other folds' events (they train
on nothing, so never on the test fold) and evaluated on the test fold as the networks are (S/sqrt(B), the limits
of the tag categories combined, the smooth-fit limit); and the test folds' counts pooled over the folds.
"""

from dataclasses import replace

import numpy as np

from ..evaluation import cutbased
from ..evaluation.io import Prediction
from ..evaluation.limits import signal_cross_section
from ..evaluation.metrics import MIN_BACKGROUND_EVENTS, effective_events, enough_events
from .predictions import event_files, read_events
from .training_eval import concatenate_categories, limits, smooth_fit, split_categories


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
