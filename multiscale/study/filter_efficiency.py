"""The heavy-flavour-filtered sample's cross section, measured directly, and checked against the vetoed sample's.

    python -m multiscale.study.filter_efficiency datasets/mass_scan/generated/qcd_*.json

The generator's sidecars (one per chunk) of the ``require`` and ``veto`` runs (generation/hf_filter.py) hold
Pythia's sigmaGen of the chunk with its error, and the filter's counts of the tried events. Two independent
measurements of the filtered cross section follow:

* **direct**: the ``require`` chunks' sigmaGen (the inclusive cross section times the weighted fraction of the
  tried events that pass), combined with inverse-variance weights;
* **from the veto runs**: the ``veto`` chunks see the same filter on their tried events, and what they veto is
  the filtered phase space: sigma_veto x f / (1 - f), f the weighted fraction they vetoed, with the binomial
  error of f (from the sums of squared weights when the sidecar has them, else from the counts).

Their ratio tests the stitching's normalisation: a wrong filter efficiency or a filtered sample normalised to
the inclusive cross section shows there, at the precision the veto runs' tries allow.
"""

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import norm

from ..cli_common import OneLineParser


def read_sidecars(paths):
    """{mode: [sidecar dicts]} of the filtered (``require``) and vetoed (``veto``) chunks among ``paths``."""
    runs = defaultdict(list)
    for path in map(Path, paths):
        try:
            sidecar = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise SystemExit(f"{path}: not a generator sidecar ({error})") from error
        counts = sidecar.get("hf_filter")
        if counts:
            runs[counts["mode"]].append(sidecar)
    return runs


def direct(chunks):
    """(cross section, error) in fb of the chunks' sigmaGen combined with inverse-variance weights."""
    sigma = np.array([c["sigma_gen_fb"] for c in chunks])
    error = np.array([c["sigma_gen_error_fb"] for c in chunks])
    weights = 1 / error**2
    return float(weights @ sigma / weights.sum()), float(1 / np.sqrt(weights.sum()))


def vetoed_fraction(chunks):
    """(f, its error, tries, vetoed): the weighted fraction of the tried events the veto chunks vetoed."""
    counts = [c["hf_filter"] for c in chunks]
    tried, passed = (sum(c[key] for c in counts) for key in ("weight_tried", "weight_passed"))
    fraction = passed / tried
    if all("weight2_tried" in c for c in counts):
        # the ratio of weighted sums: var = [(1 - f)^2 sum_pass w^2 + f^2 sum_fail w^2] / (sum w)^2
        w2_pass = sum(c["weight2_passed"] for c in counts)
        w2_fail = sum(c["weight2_tried"] for c in counts) - w2_pass
        error = np.sqrt((1 - fraction) ** 2 * w2_pass + fraction**2 * w2_fail) / tried
    else:
        error = np.sqrt(fraction * (1 - fraction) / sum(c["n_tried"] for c in counts))
    return fraction, float(error), sum(c["n_tried"] for c in counts), sum(c["n_passed"] for c in counts)


def from_veto_runs(chunks, vetoed):
    """(cross section, error) in fb of the filtered phase space from the veto chunks: sigma_veto f / (1 - f);
    ``vetoed``: their :func:`vetoed_fraction`."""
    sigma_veto, sigma_veto_error = direct(chunks)
    f, f_error, _, _ = vetoed
    odds = f / (1 - f)
    relative = np.hypot(sigma_veto_error / sigma_veto, f_error / (f * (1 - f)))
    return sigma_veto * odds, float(sigma_veto * odds * relative)


def check(runs):
    """{direct, from_veto_runs, ratio, z, p_value, tries (of each mode), vetoed (the veto runs' vetoed_fraction)}:
    the two measurements of the filtered cross section."""
    for mode in ("require", "veto"):
        if not runs.get(mode):
            raise SystemExit(f"no sidecar of a --hf-filter {mode} run among the files")
    vetoed = vetoed_fraction(runs["veto"])
    (a, da), (b, db) = direct(runs["require"]), from_veto_runs(runs["veto"], vetoed)
    z = (a - b) / np.hypot(da, db)
    return {"direct": (a, da), "from_veto_runs": (b, db), "ratio": a / b, "ratio_error": a / b * np.hypot(da / a, db / b),
            "z": float(z), "p_value": float(2 * norm.sf(abs(z))), "vetoed": vetoed,
            "tries": {m: sum(c["hf_filter"]["n_tried"] for c in runs[m]) for m in runs}}


def main(argv=None):
    parser = OneLineParser(prog="python -m multiscale.study.filter_efficiency", description=__doc__.split("\n\n")[0])
    parser.add_argument("sidecars", nargs="+", help="generator sidecars (.json) of the --hf-filter require and veto runs")
    args = parser.parse_args(argv)
    runs = read_sidecars(args.sidecars)
    result = check(runs)
    f, f_error, tried, vetoed = result["vetoed"]
    print(f"filtered cross section, direct ({len(runs['require'])} require chunks, {result['tries']['require']} tries): "
          f"{result['direct'][0]:.4g} +- {result['direct'][1]:.2g} fb")
    print(f"from the veto runs ({len(runs['veto'])} chunks, {tried} tries, {vetoed} vetoed, weighted fraction "
          f"{f:.4%} +- {f_error:.2%}): {result['from_veto_runs'][0]:.4g} +- {result['from_veto_runs'][1]:.2g} fb")
    print(f"ratio {result['ratio']:.3f} +- {result['ratio_error']:.3f}, z = {result['z']:.2f}, p = {result['p_value']:.2g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
