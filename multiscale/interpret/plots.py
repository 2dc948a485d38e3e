"""Figures of the interpretability tools (matplotlib object API: no pyplot state, no GUI backend).

Neutral ``mplhep.style.ROOT`` style and no experiment label, as in ``multiscale.evaluation``.
Cells never observed (a pair of tokens that never both existed) are drawn grey.
"""

import math
import re

import matplotlib
import matplotlib.style
import mplhep
import numpy as np
from matplotlib.colors import LogNorm, Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

STYLE = mplhep.style.ROOT
CLASS_TITLES = {"signal": "signal", "background": "background"}
METHOD_NAMES = {"gradcam": "Grad-CAM", "hirescam": "HiResCAM"}


def _cmap(name, bad="0.85"):
    return matplotlib.colormaps[name].with_extremes(bad=bad)


def _is_rank(label):
    return re.fullmatch(r"\w+ \d+", label) is not None and not label.startswith("reg")


def _colorbar(fig, im, ax, label, fraction=0.046, labelsize=8):
    cbar = fig.colorbar(im, ax=ax, fraction=fraction, pad=0.01)
    cbar.ax.tick_params(labelsize=labelsize)
    cbar.set_label(label, fontsize=labelsize + 3)
    return cbar


def _tick_labels(labels):
    """'fj1 1', 'fj1 2', ... -> '1', '', '', '', '5', ...: rank 1 and every fifth rank (the jet names
    go on the opposite axis, see ``_decorate``); object and register names in full."""
    out = []
    for label in labels:
        if _is_rank(label):
            rank = int(label.rsplit(" ", 1)[1])
            out.append(str(rank) if rank == 1 or rank % 5 == 0 else "")
        else:
            out.append(label)
    return out


def _group_axis(ax, groups, which, fontsize):
    """Names of the constituent blocks (fj1, fj2) on the opposite side of the axis, between separators."""
    blocks = [(name, a, b) for name, a, b in groups if b - a > 1]
    if not blocks:
        return
    centres = [(a + b - 1) / 2 for _, a, b in blocks]
    names = [name for name, _, _ in blocks]
    sec = ax.secondary_xaxis("top") if which == "x" else ax.secondary_yaxis("right")
    sec.set_ticks(centres, names, fontsize=fontsize + 1)
    sec.tick_params(which="both", length=0)
    sec.minorticks_off()


def _decorate(ax, map_, fontsize=7):
    q_labels, k_labels = list(map_.query_labels), list(map_.key_labels)
    ax.set_xticks(range(len(k_labels)), _tick_labels(k_labels), rotation=90, fontsize=fontsize)
    ax.set_yticks(range(len(q_labels)), _tick_labels(q_labels), fontsize=fontsize)
    ax.tick_params(which="both", length=0)
    ax.minorticks_off()
    for _, start, _ in map_.key_groups[1:]:
        ax.axvline(start - 0.5, color="white", linewidth=0.8)
    for _, start, _ in map_.query_groups[1:]:
        ax.axhline(start - 0.5, color="white", linewidth=0.8)
    if any(_is_rank(label) for label in k_labels):
        _group_axis(ax, map_.key_groups, "x", fontsize)
    if any(_is_rank(label) for label in q_labels):
        _group_axis(ax, map_.query_groups, "y", fontsize)


def _axis_names(map_):
    if map_.kind == "cross":
        return "key: constituent (pT rank)", "query: object"
    if map_.stream == "ev":
        return "key: object", "query: object"
    return "key: constituent (pT rank)", "query: constituent (pT rank)"


def _value_name(map_):
    return "mean weight x valid keys" if map_.relative else "mean weight"


def _image(ax, values, cmap="viridis", **kwargs):
    return ax.imshow(values, cmap=_cmap(cmap), aspect="auto", interpolation="nearest", **kwargs)


def plot_heads(map_, cls, path, label=""):
    """Every head's averaged map of one layer (one class), each panel with its own colour scale."""
    mean = map_.acc.mean()
    heads = mean.shape[0]
    ncols = min(4, heads)
    nrows = math.ceil(heads / ncols)
    size = 3.2 if max(mean.shape[1:]) > 12 else 2.8
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(ncols * size * 1.25 + 1, nrows * size + 1.2), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
        xname, yname = _axis_names(map_)
        for h, ax in enumerate(axes.flat):
            if h >= heads:
                ax.set_axis_off()
                continue
            im = _image(ax, mean[h])  # own range per head: the structure is in small deviations
            _decorate(ax, map_, fontsize=6)
            ax.set_title(f"head {h}", fontsize=10)
            _colorbar(fig, im, ax, _value_name(map_) if h % ncols == ncols - 1 else "", labelsize=6)
        fig.supxlabel(xname, fontsize=11)
        fig.supylabel(yname, fontsize=11)
        fig.suptitle(f"{map_.kind}-attention, stream '{map_.stream}', layer {map_.layer}: {CLASS_TITLES[cls]} "
                     f"({map_.acc.events} events){label}", fontsize=12)
        fig.savefig(path, dpi=130)


def plot_comparison(maps_by_class, name, path, label="", title=None):
    """Head-averaged map: signal, background, and their difference, stacked (wide key axis) or side by side."""
    sig, bkg = maps_by_class["signal"][name], maps_by_class["background"][name]
    means = {"signal": np.nanmean(sig.acc.mean(), axis=0) if sig.acc.events else None,
             "background": np.nanmean(bkg.acc.mean(), axis=0) if bkg.acc.events else None}
    n_q, n_k = sig.acc.n_query, sig.acc.n_key
    wide = n_k > 2 * n_q
    shown = [m for m in means.values() if m is not None]
    vmin, vmax = np.nanmin([np.nanmin(m) for m in shown]), np.nanmax([np.nanmax(m) for m in shown])
    with matplotlib.style.context(STYLE):
        if wide:
            fig = Figure(figsize=(max(8, 0.3 * n_k + 2), 3 * (0.35 * n_q + 1)), layout="constrained")
            axes = fig.subplots(3, 1)
        else:
            fig = Figure(figsize=(17, 5.6) if n_k > 12 else (15, 4.6), layout="constrained")
            axes = fig.subplots(1, 3)
        for ax, cls in zip(axes, ("signal", "background")):
            m = maps_by_class[cls][name]
            if means[cls] is None:
                ax.set_axis_off()
                continue
            im = _image(ax, means[cls], vmin=vmin, vmax=vmax)
            _decorate(ax, m)
            ax.set_title(f"{CLASS_TITLES[cls]} ({m.acc.events} events)", fontsize=11)
            _colorbar(fig, im, ax, _value_name(m), 0.02 if wide else 0.046)
        ax = axes[2]
        if means["signal"] is not None and means["background"] is not None:
            diff = means["signal"] - means["background"]
            span = np.nanmax(np.abs(diff)) or 1.0
            im = _image(ax, diff, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -span, span))
            _decorate(ax, sig)
            ax.set_title("signal - background", fontsize=11)
            _colorbar(fig, im, ax, "difference", 0.02 if wide else 0.046)
        else:
            ax.set_axis_off()
        xname, yname = _axis_names(sig)
        fig.supxlabel(xname, fontsize=11)
        fig.supylabel(yname, fontsize=11)
        heads = sig.acc.heads
        fig.suptitle(title or f"{sig.kind}-attention, stream '{sig.stream}', layer {sig.layer}, "
                     f"mean of {heads} heads{label}", fontsize=12)
        fig.savefig(path, dpi=130)


def plot_gradcam(hists_by_class, jets, path, label="", method="gradcam", layer=-1, stream_note="", log=False):
    """Mean Grad-CAM per event in the aligned (eta, phi) plane: signal | background, one row per
    entry of ``jets`` (a jet name, or a tuple of jet names summed)."""
    rows = [(j if isinstance(j, tuple) else (j,)) for j in jets]
    name = METHOD_NAMES.get(method, method)
    images = {}
    for cls, hists in hists_by_class.items():
        for r, names in enumerate(rows):
            present = [hists[n] for n in names if n in hists]
            if present:
                images[cls, r] = sum(h.per_event() for h in present), present[0].edges
    vmax = max((img.max() for img, _ in images.values()), default=1.0) or 1.0
    positive = [img[img > 0].min() for img, _ in images.values() if (img > 0).any()]
    norm = LogNorm(max(min(positive, default=vmax * 1e-4), vmax * 1e-4), vmax) if log else Normalize(0, vmax)
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(13, 5.8 * len(rows)), layout="constrained")
        axes = fig.subplots(len(rows), 2, squeeze=False)
        for r, names in enumerate(rows):
            for c, cls in enumerate(("signal", "background")):
                ax = axes[r, c]
                if (cls, r) not in images:
                    ax.set_axis_off()
                    continue
                img, edges = images[cls, r]
                events = next(iter(hists_by_class[cls].values())).events
                cmap = _cmap("inferno", bad=matplotlib.colormaps["inferno"](0.0))  # empty bins of a log scale: as zero
                im = ax.imshow(np.ma.masked_less_equal(img.T, 0) if log else img.T, origin="lower",
                               extent=(edges[0], edges[-1], edges[0], edges[-1]), cmap=cmap, norm=norm,
                               interpolation="nearest", aspect="equal")
                ax.set_xlabel(r"$\eta'$ (aligned)", fontsize=15)
                ax.set_ylabel(r"$\phi'$ (aligned)", fontsize=15)
                ax.tick_params(labelsize=12)
                jet_text = " + ".join(names) + (" (each in its own frame)" if len(names) > 1 else "")
                ax.set_title(f"{CLASS_TITLES[cls]}: {jet_text}, {events} events", fontsize=12)
                _colorbar(fig, im, ax, f"mean {name} per event", labelsize=10)
        fig.suptitle(f"{name} of the signal logit, last-block tokens{stream_note}, layer {layer}{label}", fontsize=13)
        fig.savefig(path, dpi=130)
