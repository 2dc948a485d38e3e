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
    """The smallest count, rounded to an integer (effective counts are not integers)."""
    return int(round(min(count) if isinstance(count, list) else count))


LOW_STATISTICS_MARK = " †"


def _flag(text, flagged):
    return text + LOW_STATISTICS_MARK if flagged else text


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
        rejection = partial(_number, n_background=_smallest(model["n_background_effective"]))
        low = set(model["low_statistics"])
        cuts = ", ".join("n/a" if c is None else f"{c:.4f}" for c in model["significance"]["best_cut"])
        rows.append(
            [name, str(model["trainings"]), _counts(model["n_signal"]), _counts(model["n_background"]),
             _mean_std(model["auc"], _auc)]
            + [_flag(_mean_std(model["rejection"][f"{e:.2f}"], rejection), f"{e:.2f}" in low) for e in effs]
            + [_flag(_mean_std(model["rejection_at_cut_based_efficiency"], rejection), "cut_based" in low),
               _mean_std(model["significance"]), f"score ≥ {cuts}"]
        )
    for sample in summary["cut_based"]["samples"]:
        bound = _smallest(sample["n_background_effective"])
        rows.append(
            [sample["label"], "–", str(sample["n_signal"]), str(sample["n_background"]), "–"]
            + ["–"] * len(effs)
            + [f"{_number(sample['background_rejection'], bound)} (εS={sample['signal_efficiency']:.3f})",
               _flag(_number(sample["significance"]), sample["low_statistics"]), "cut-based"]
        )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]

    selection = summary["cut_based"]["selection"]
    notes = [
        "",
        f"- Mean ± standard deviation (ddof=1) over trainings; 1/εB = background rejection at signal efficiency εS "
        "(efficiencies are fractions of the expected yields), interpolated on the ROC; '> N' means no background "
        "MC event was left (N = effective background MC events of the sample).",
        f"- S/√B: expected signal over square root of expected background at L = {summary['luminosity_fb']:g} fb⁻¹, "
        f"at the score cut maximising it; cuts keeping fewer than {summary['min_background_events']} effective "
        "background MC events are ignored.",
        f"- {LOW_STATISTICS_MARK.strip()}: the background at this working point rests on fewer than "
        f"{summary['min_background_events']} effective MC events, N_eff = (Σy)²/Σy²: the number is unreliable.",
        f"- Yields: {summary['normalisation']}.",
        f"- Cut-based reference: {selection['definition']}.",
    ]
    for sample in summary["cut_based"]["samples"]:
        notes.append(
            f"- {sample['label']} on {sample['file']}: εS = {sample['signal_efficiency']:.4f} "
            f"({sample['n_signal_pass']}/{sample['n_signal']}), εB = {sample['background_efficiency']:.4g} "
            f"({sample['n_background_pass']}/{sample['n_background']} MC events), S = {sample['S']:.4g}, "
            f"B = {sample['B']:.4g} ± {sample['B_stat_uncertainty']:.2g} (MC stat, "
            f"N_eff = {sample['background_effective_events']:.1f})"
            + (f"; {sample['note']}" if "note" in sample else "")
        )
    for name, model in summary["models"].items():
        for training in model["per_training"]:
            best = training["significance"]
            # no significance and no note: skipped (no normalisation branches), said below
            if "note" in best:
                notes.append(f"- {name} ({training['file']}): {best['note']}")
            elif best["significance"] is not None:
                notes.append(
                    f"- {name} ({training['file']}): best S/√B cut score ≥ {best['threshold']:.4f}, "
                    f"S = {best['S']:.4g}, B = {best['B']:.4g} ± {best['B_stat_uncertainty']:.2g} (N_eff = "
                    f"{best['background_effective_events']:.1f})"
                )
            low = [f"{'εS = cut-based' if key == 'cut_based' else 'εS = ' + key}: N_eff = "
                   f"{point['background_effective_events']:.1f}"
                   for key, point in training["working_points"].items() if point["low_statistics"]]
            if low:
                notes.append(f"- {name} ({training['file']}){LOW_STATISTICS_MARK} " + "; ".join(low))
    for figure, why in summary.get("skipped", {}).items():
        notes.append(f"- Skipped: {figure} ({why}).")
    return "\n".join(lines + notes) + "\n"


def write_markdown(summary, path):
    text = markdown(summary)
    with open(path, "w") as handle:
        handle.write(text)
    return text
