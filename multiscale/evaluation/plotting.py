"""ROC and score-distribution plots (matplotlib object API: no pyplot state, no GUI backend needed).

Neutral ``mplhep.style.ROOT`` style and no experiment label: these are not results of any
collaboration.
"""

import matplotlib.style
import mplhep
import numpy as np
from matplotlib.figure import Figure

from .metrics import background_efficiency_at

STYLE = mplhep.style.ROOT
# common signal-efficiency grid on which repeated trainings are averaged
EFFICIENCY_GRID = np.linspace(0.01, 1.0, 100)


def rejection_on_grid(curve, grid=EFFICIENCY_GRID):
    """1/eps_B interpolated at each grid point; NaN where no background is left (off a log axis)."""
    eff_b = np.array([background_efficiency_at(curve, e) for e in grid])
    return np.divide(1.0, eff_b, out=np.full_like(eff_b, np.nan), where=eff_b > 0)


def mean_rejection_band(curves, grid=EFFICIENCY_GRID):
    """Mean and standard deviation (ddof=1) of the rejection over trainings at each grid point.

    A grid point where any training has no background left is NaN: averaging only the finite ones
    would bias the mean upwards.
    """
    rejections = np.vstack([rejection_on_grid(c, grid) for c in curves])
    mean = rejections.mean(axis=0)
    std = rejections.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros_like(mean)
    return mean, std


def _headroom(ax, n_entries):
    """Raise the top of a log axis so that a legend of ``n_entries`` lines does not cover the data."""
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom, top * 10 ** (0.3 + 0.3 * n_entries))


def plot_roc(curves, aucs, cut_based_points, paths, cut_based_definition="", colors=None):
    """Background rejection (log) vs signal efficiency; one line (+-1 std band) per model.

    curves: {model: [Roc, ...]}; aucs: {model: {"mean", "std"}}; cut_based_points: [(label, eff_s, eff_b, n_background)]
    with n_background the (effective) number of background MC events, the bound drawn when no background passes;
    colors: {model: colour} for models that keep one colour across plots (the others: C0, C1, ... by order).
    """
    colors = colors or {}
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(8, 7))
        ax = fig.add_subplot()
        for i, (name, model_curves) in enumerate(curves.items()):
            color = colors.get(name, f"C{i}")
            mean, std = mean_rejection_band(model_curves)
            auc = aucs[name]
            label = f"{name}, AUC = {auc['mean']:.4f}"
            if len(model_curves) > 1:
                label += f" ± {auc['std']:.4f} ({len(model_curves)} trainings)"
                # a lower edge <= 0 is clipped by the log axis: the band then reaches the bottom
                ax.fill_between(EFFICIENCY_GRID, mean - std, mean + std, color=color, alpha=0.25, linewidth=0)
            ax.plot(EFFICIENCY_GRID, mean, color=color, label=label, linewidth=2)
        ax.plot(EFFICIENCY_GRID, 1.0 / EFFICIENCY_GRID, color="grey", linestyle=":", label="random")
        markers = "*Ds^v"
        for j, (label, eff_s, eff_b, n_background) in enumerate(cut_based_points):
            style = {"marker": markers[j % len(markers)], "color": "black", "markersize": 16, "linestyle": "none"}
            if eff_b > 0:
                ax.plot(eff_s, 1.0 / eff_b, label=f"{label}: εS = {eff_s:.3f}, 1/εB = {1.0 / eff_b:.3g}", **style)
            else:  # no background MC event left: 1/eps_B > N (N effective background MC events), drawn at N, arrow up
                ax.plot(eff_s, n_background, label=f"{label}: εS = {eff_s:.3f}, 1/εB > {n_background}", **style)
                ax.annotate("", xy=(eff_s, n_background * 3), xytext=(eff_s, n_background),
                            arrowprops={"arrowstyle": "->", "color": "black", "lw": 2})
        # the title above the frame: inside it would collide with legend or curves
        _finish_log_axes(ax, "Signal efficiency $\\varepsilon_S$", "Background rejection $1/\\varepsilon_B$",
                         f"cut-based: {cut_based_definition}" if cut_based_definition else "")
        for path in paths:
            fig.savefig(path, bbox_inches="tight")
    return fig


def _finish_log_axes(ax, xlabel, ylabel, title):
    """Log y with room for the legend, x in [0, 1], labels, legend, and a small title above the frame."""
    ax.set_yscale("log")
    _headroom(ax, n_entries=len(ax.get_legend_handles_labels()[1]))
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper right", fontsize="x-small")
    if title:
        ax.set_title(title, loc="left", fontsize="x-small")


def plot_scores(scores, path, bins=40, note=""):
    """Normalised signal and background score distributions, weighted by the expected yields;
    scores: {model: (is_signal, score, yield weights)}."""
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(8, 7))
        ax = fig.add_subplot()
        edges = np.linspace(0.0, 1.0, bins + 1)
        for i, (name, (is_signal, score, weights)) in enumerate(scores.items()):
            score = np.clip(score, 0.0, 1.0)  # softmax output; clip keeps rounding at 1 in the last bin
            for selected, kind, linestyle in ((is_signal, "signal", "-"), (~is_signal, "background", "--")):
                counts, _ = np.histogram(score[selected], bins=edges, weights=weights[selected], density=True)
                mplhep.histplot(counts, edges, ax=ax, color=f"C{i}", linestyle=linestyle, linewidth=2,
                                label=f"{name}: {kind}")
        _finish_log_axes(ax, "Signal score", "Events / bin width (unit area)", note)
        fig.savefig(path, bbox_inches="tight")
