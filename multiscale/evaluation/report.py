"""Write the evaluation as ``metrics.json`` and as a markdown table (``metrics.md``)."""

import json
import math
from functools import partial

import numpy as np


def jsonable(value):
    """numpy scalars to Python; inf/NaN to null (JSON has no infinity: an infinite rejection means
    no background MC event was left, see the accompanying counts)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(summary, path):
    with open(path, "w") as handle:
        json.dump(jsonable(summary), handle, indent=2)
        handle.write("\n")


def _number(value, n_background=None):
    """Rejections span decades: fewer decimals for larger values. inf -> '> N' (N background events)."""
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        return f"> {n_background}" if n_background is not None else "inf"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if 0 < abs(value) < 0.1:
        return f"{value:.2e}"  # tiny toy cross sections must not print as 0.00
    return f"{value:.2f}"


def _mean_std(entry, fmt=_number):
    """'mean ± std' (the std only with several trainings)."""
    text = fmt(entry["mean"])
    if entry["std"] is not None:
        text += " ± " + fmt(entry["std"])
    return text


def _auc(value):
    return "n/a" if value is None else f"{value:.4f}"


def _smallest(count):
    return min(count) if isinstance(count, list) else count


def _counts(count):
    return "/".join(str(c) for c in count) if isinstance(count, list) else str(count)


def markdown(summary):
    effs = summary["signal_efficiencies"]
    header = (
        ["model", "trainings", "N sig", "N bkg", "AUC"]
        + [f"1/εB @ εS={e:.0%}" for e in effs]
        + ["1/εB @ cut-based εS", f"S/√B ({summary['luminosity_fb']:g} fb⁻¹)", "best cut"]
    )
    rows = []
    for name, model in summary["models"].items():
        rejection = partial(_number, n_background=_smallest(model["n_background"]))
        cuts = ", ".join("n/a" if c is None else f"{c:.4f}" for c in model["significance"]["best_cut"])
        rows.append(
            [name, str(model["trainings"]), _counts(model["n_signal"]), _counts(model["n_background"]),
             _mean_std(model["auc"], _auc)]
            + [_mean_std(model["rejection"][f"{e:.2f}"], rejection) for e in effs]
            + [_mean_std(model["rejection_at_cut_based_efficiency"], rejection),
               _mean_std(model["significance"]), f"score ≥ {cuts}"]
        )
    for sample in summary["cut_based"]["samples"]:
        rows.append(
            [sample["label"], "–", str(sample["n_signal"]), str(sample["n_background"]), "–"]
            + ["–"] * len(effs)
            + [f"{_number(sample['background_rejection'], sample['n_background'])} (εS={sample['signal_efficiency']:.3f})",
               _number(sample["significance"]), "cut-based"]
        )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]

    selection = summary["cut_based"]["selection"]
    notes = [
        "",
        f"- Mean ± standard deviation (ddof=1) over trainings; 1/εB = background rejection at signal efficiency εS, "
        "interpolated on the ROC; '> N' means no background MC event of N was left.",
        f"- S/√B: expected signal over square root of expected background at L = {summary['luminosity_fb']:g} fb⁻¹, "
        f"at the score cut maximising it; cuts keeping fewer than {summary['min_background_events']} background MC "
        "events are ignored.",
        f"- Yields: {summary['normalisation']}.",
        f"- Cut-based reference: {selection['definition']}.",
    ]
    for sample in summary["cut_based"]["samples"]:
        notes.append(
            f"- {sample['label']} on {sample['file']}: εS = {sample['signal_efficiency']:.4f} "
            f"({sample['n_signal_pass']}/{sample['n_signal']}), εB = {sample['background_efficiency']:.4g} "
            f"({sample['n_background_pass']}/{sample['n_background']}), S = {sample['S']:.4g}, B = {sample['B']:.4g}"
            + (f"; {sample['note']}" if "note" in sample else "")
        )
    for name, model in summary["models"].items():
        for training in model["per_training"]:
            if "note" in training["significance"]:
                notes.append(f"- {name} ({training['file']}): {training['significance']['note']}")
    return "\n".join(lines + notes) + "\n"


def write_markdown(summary, path):
    text = markdown(summary)
    with open(path, "w") as handle:
        handle.write(text)
    return text
