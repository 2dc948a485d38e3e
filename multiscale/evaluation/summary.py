"""Evaluate every training of every model and combine repeated trainings into mean and spread.

A "model" is a name given to one or more prediction files; several files under one name are
repeated trainings (different seeds) of the same model, evaluated on a test sample. The numbers are
computed per training, then summarised as mean and sample standard deviation (ddof=1; None for a
single training). The cut-based reference does not depend on the model: it is computed once per
distinct test sample (identified by its event ids, processes and labels).
"""

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..definitions import LUMINOSITY_FB
from . import cutbased
from .io import CUTBASED_BRANCHES, NORMALISATION_BRANCHES
from .metrics import MIN_BACKGROUND_EVENTS, SIGNAL_EFFICIENCIES, auc, best_significance, roc, working_point
from .yields import event_index, mc_statistics, process_table, yield_weights


def efficiency_key(signal_efficiency):
    return f"{signal_efficiency:.2f}"


def usable_spread(values, log_spread=False):
    """{mean, std, n} of the usable values (None and non-finite dropped; std with ddof=1, None for one value):
    a study's repeats where some gave no value (``n`` says how many did); ``log_spread``: also ``log_std``, the
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


def spread(values):
    """{mean, std, per_training} over every training (usable_spread), where one training without a value (None)
    makes the mean None and an infinite one makes it infinite, std None: a model's figure is never the mean of
    the trainings that happened to give one."""
    values = list(values)
    if any(v is None for v in values):
        return {"mean": None, "std": None, "per_training": values}
    if not np.all(np.isfinite(np.asarray(values, dtype=np.float64))):
        return {"mean": float(np.inf), "std": None, "per_training": values}
    usable = usable_spread(values)
    return {"mean": usable["mean"], "std": usable["std"], "per_training": values}


def sample_key(prediction):
    """Fingerprint of the test sample: the same events with the same labels give the same key."""
    digest = hashlib.sha1()
    for name in ("event_id", "process"):
        if name in prediction.arrays:  # a file of another schema: its labels in entry order
            digest.update(np.ascontiguousarray(prediction.arrays[name]).tobytes())
    digest.update(np.packbits(prediction.is_signal).tobytes())
    return digest.hexdigest()


def skipped_figures(prediction):
    """{figure: why} for what a prediction file cannot give (a file of another schema)."""
    skipped = {}
    if not prediction.has(*NORMALISATION_BRANCHES):
        missing = ", ".join(b for b in NORMALISATION_BRANCHES if b not in prediction.arrays)
        skipped["expected yields and S/√B"] = (
            f"no {missing} branch: ROC, AUC and rejections count MC events (unweighted)")
    if not prediction.has(*CUTBASED_BRANCHES, *NORMALISATION_BRANCHES):
        skipped["cut-based reference"] = "needs the fat-jet branches (fj1_sdmass, fj1_nbtag, ...) and the yields"
    return skipped


def event_weights(prediction, luminosity_fb):
    """Expected yields per event, or 1 per MC event when the file has no normalisation branches."""
    if prediction.has(*NORMALISATION_BRANCHES):
        return yield_weights(prediction, luminosity_fb)
    return np.ones(len(prediction))


@dataclass
class Evaluation:
    """What the report and the plots need."""

    summary: dict  # JSON-ready numbers (non-finite values still as floats: report.py converts them)
    curves: dict = field(default_factory=dict)  # model -> [Roc per training]
    scores: dict = field(default_factory=dict)  # model -> (is_signal, score, yield weights) of its first training
    cut_based_points: list = field(default_factory=list)  # (label, eff_S, eff_B, effective background MC events)


def roc_figures(prediction, luminosity_fb, signal_efficiencies, min_background_events):
    """(yield weights, event index, ROC, {auc, working_points}) of one training's test predictions: what every
    evaluation of a training starts from (this module's and the mass scan's, study.training_eval). The ROC and AUC
    are weighted by the expected yields (event_weights); a working point's N_eff counts the truth-tagged copies of
    one event as one MC event, and is flagged below ``min_background_events``."""
    weights = event_weights(prediction, luminosity_fb)
    event = event_index(prediction)
    curve = roc(prediction.is_signal, prediction.score, weights, event)
    points = {efficiency_key(e): working_point(curve, e, min_background_events) for e in signal_efficiencies}
    return weights, event, curve, {"auc": auc(prediction.is_signal, prediction.score, weights), "working_points": points}


def evaluate_training(prediction, luminosity_fb, signal_efficiencies, min_background_events):
    """The numbers of one training (roc_figures), with its MC statistics, its best S/sqrt(B) and its processes."""
    weights, event, curve, figures = roc_figures(prediction, luminosity_fb, signal_efficiencies, min_background_events)
    normalised = prediction.has(*NORMALISATION_BRANCHES)
    is_signal, score = prediction.is_signal, prediction.score
    no_significance = {"significance": None, "threshold": None}
    entry = {
        "file": prediction.path,
        "n_signal": prediction.n_signal,
        "n_background": prediction.n_background,
        "background_mc": mc_statistics(weights[~is_signal], event[~is_signal]),
        "auc": figures["auc"],
        "rejection": {key: point["rejection"] for key, point in figures["working_points"].items()},
        "working_points": figures["working_points"],
        "significance": best_significance(is_signal, score, weights, min_background_events, event) if normalised
        else no_significance,
        "processes": {entry["name"]: entry for entry in process_table(prediction).values()} if normalised else {},
    }
    return entry, curve


def _same_or_list(values):
    return values[0] if all(v == values[0] for v in values) else values


def evaluate_models(
    models,
    selection,
    luminosity_fb=LUMINOSITY_FB,
    signal_efficiencies=SIGNAL_EFFICIENCIES,
    min_background_events=MIN_BACKGROUND_EVENTS,
):
    """``models``: {name: [Prediction, ...]} (dict order is the report order)."""
    samples = {}  # sample key -> cut-based result of that sample
    evaluation = Evaluation(summary={})
    model_summaries, skipped = {}, {}
    for name, predictions in models.items():
        trainings, curves = [], []
        for prediction in predictions:
            entry, curve = evaluate_training(prediction, luminosity_fb, signal_efficiencies, min_background_events)
            cannot = skipped_figures(prediction)
            for figure, why in cannot.items():
                skipped.setdefault(figure, f"{prediction.path}: {why}")
            if "cut-based reference" in cannot:
                entry["rejection_at_cut_based_efficiency"] = None
                trainings.append(entry)
                curves.append(curve)
                continue
            key = sample_key(prediction)
            if key not in samples:
                samples[key] = {
                    "file": prediction.path,
                    "models": [],
                    **cutbased.evaluate(prediction, selection, luminosity_fb, min_background_events),
                }
            if name not in samples[key]["models"]:
                samples[key]["models"].append(name)
            # the model at the cut-based working point: the direct comparison with the reference
            point = working_point(curve, samples[key]["signal_efficiency"], min_background_events)
            entry["working_points"]["cut_based"] = point
            entry["rejection_at_cut_based_efficiency"] = point["rejection"]
            trainings.append(entry)
            curves.append(curve)
        significances = [t["significance"]["significance"] for t in trainings]
        model_summaries[name] = {
            "trainings": len(trainings),
            "files": [t["file"] for t in trainings],
            "n_signal": _same_or_list([t["n_signal"] for t in trainings]),
            "n_background": _same_or_list([t["n_background"] for t in trainings]),
            "n_background_effective": _same_or_list([t["background_mc"]["effective_events"] for t in trainings]),
            "auc": spread(t["auc"] for t in trainings),
            "rejection": {
                key: spread(t["rejection"][key] for t in trainings) for key in trainings[0]["rejection"]
            },
            "rejection_at_cut_based_efficiency": spread(t["rejection_at_cut_based_efficiency"] for t in trainings),
            # working points (keys of "rejection" and "cut_based") where some training's background
            # rests on fewer than min_background_events effective MC events
            "low_statistics": sorted(
                {key for t in trainings for key, point in t["working_points"].items() if point["low_statistics"]}
            ),
            "significance": {
                **spread(significances),
                "best_cut": [t["significance"]["threshold"] for t in trainings],
            },
            "per_training": trainings,
        }
        evaluation.curves[name] = curves
        first = predictions[0]
        evaluation.scores[name] = (first.is_signal, first.score, event_weights(first, luminosity_fb))

    sample_list = list(samples.values())
    for sample in sample_list:
        label = "cut-based" if len(sample_list) == 1 else f"cut-based ({', '.join(sample['models'])})"
        sample["label"] = label
        evaluation.cut_based_points.append(
            (label, sample["signal_efficiency"], sample["background_efficiency"],
             int(round(sample["n_background_effective"])))
        )
    evaluation.summary = {
        "luminosity_fb": float(luminosity_fb),
        "signal_efficiencies": [float(e) for e in signal_efficiencies],
        "min_background_events": int(min_background_events),
        "normalisation": (
            "expected yield of event i of process p = L * sigmaA_p * w_i / sum_{j in p} w_j, sigmaA_p = event "
            "mean of xsec_fb * acceptance over the events of p in the sample, w = the weight branch; "
            "efficiencies are fractions of these yields"
        ),
        "effective_events_definition": (
            "background MC statistics of a selection: N_eff = (sum y)^2 / sum y^2 over its background yields y; "
            f"working points with N_eff < {min_background_events} are flagged (low_statistics)"
        ),
        "significance_definition": (
            f"S/sqrt(B) at the score cut maximising it; cuts keeping < {min_background_events} "
            "effective background MC events are not considered"
        ),
        "models": model_summaries,
        "cut_based": {"selection": selection.as_dict(), "samples": sample_list},
        "skipped": skipped,  # figure -> why (prediction files of another schema)
    }
    return evaluation
