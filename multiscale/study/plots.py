"""Plots of the mass scan: expected limit and S/sqrt(B) against m_H, ROC at the reference mass."""

import matplotlib.style
import numpy as np
from matplotlib.figure import Figure

from ..definitions import MODELS
from ..evaluation.plotting import STYLE, plot_roc
from .report import CUT_BASED, CUT_BASED_POOLED, model_rank

MARKERS = "osv^P*hp<>"
# one colour and marker per model in every plot, whatever order the results come in: a model of
# multiscale/definitions.py by its place there, the cut-based references in black and grey
STYLES = {**{model: (f"C{i}", MARKERS[i % len(MARKERS)]) for i, model in enumerate(MODELS)},
          CUT_BASED: ("black", "D"), CUT_BASED_POOLED: ("grey", "X")}


def _per_model(summary, figure):
    """{model: (masses, mean, std)} of one summarised figure, over the masses where it exists."""
    lines = {}
    for model, by_mass in summary["summary"].items():
        points = [(float(m), s[figure]["mean"], s[figure]["std"] or 0.0)
                  for m, s in by_mass.items() if figure in s and s[figure]["mean"] is not None]
        if points:
            masses, mean, std = map(np.array, zip(*sorted(points)))
            lines[model] = (masses, mean, std)
    return lines


def _against_mass(summary, figure, ylabel, path, title, log=True):
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(8, 7))
        ax = fig.add_subplot()
        lines = sorted(_per_model(summary, figure).items(), key=lambda item: model_rank(item[0]))
        for i, (model, (masses, mean, std)) in enumerate(lines):
            # a model not defined: a colour after the defined ones'
            color, marker = STYLES.get(model, (f"C{len(MODELS) + i}", MARKERS[i % len(MARKERS)]))
            ax.fill_between(masses, np.maximum(mean - std, mean * 1e-3), mean + std, color=color, alpha=0.2, linewidth=0)
            ax.plot(masses, mean, color=color, marker=marker, linewidth=2,
                    linestyle="--" if model.startswith("cut-based") else "-", label=model)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("$m_H$ [GeV]")
        ax.set_ylabel(ylabel)
        ax.set_title(title, loc="left", fontsize="x-small")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the lines fill the axes
        fig.savefig(path, bbox_inches="tight")
    return fig


def limit_vs_mass(summary, path, figure="limit_fb", note=""):
    """Expected 95% CL upper limit on sigma(gg -> H) x BR(H -> hh -> bbbb); band: +-1 std over trainings."""
    return _against_mass(summary, figure, "Expected 95% CL limit on σ × BR [fb]", path,
                         f"σ(gg → H) × BR(H → hh → $b\\bar bb\\bar b$), {summary['luminosity_fb']:g} fb$^{{-1}}$, 14 TeV\n"
                         f"{note}; mean ± std over trainings (folds)")


def significance_vs_mass(summary, path):
    """Best expected S/sqrt(B) at the benchmark signal cross section."""
    return _against_mass(summary, "significance", "Best expected S/√B (σ×BR = 10 fb)", path,
                         f"{summary['luminosity_fb']:g} fb$^{{-1}}$, mean ± std over trainings (folds)\n"
                         f"cuts keeping ≥ {summary['min_background_events']:g} effective background MC events")


def roc_at(curves, summary, cut_based, mass, path):
    """Weighted ROC bands of every model at one mass; the cut-based working points of each fold."""
    key = f"{mass:g}"
    aucs = {model: summary["summary"][model][key]["auc"] for model in curves}
    aucs = {m: {"mean": a["mean"], "std": a["std"] or 0.0} for m, a in aucs.items()}
    points = [(f"cuts (fold {fold})", r["signal_efficiency"], r["background_efficiency"],
               int(r.get("n_background_effective", 0)))
              for fold, r in sorted(cut_based.items()) if r.get("selection")][:3]
    return plot_roc(curves, aucs, points, [path], cut_based_definition=f"m_H = {mass:g} GeV, cuts optimised per fold",
             colors={model: color for model, (color, _) in STYLES.items()})
