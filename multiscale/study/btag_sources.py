"""Where the yield after the b-tags comes from: per sample and tag region, the truth-tagged cross section
split by the truth labels of the tagged subjets.

For every event, every tag configuration of its four subjets (truth_tagging.CONFIGS) with at least
``k`` tags carries the probability of that configuration; the configuration's yield goes to the first
source that describes its tagged subjets:

* ``light``: a tagged subjet is light (a mistag);
* ``charm``: else a tagged subjet is c;
* ``two b in one fat jet``: else both subjets of one fat jet are tagged and b-labelled. With labels
  that give a hadron to one jet only, these are two hadrons; with the cone rule that gave a hadron to
  every jet within dR < 0.3, one hadron often labelled both;
* ``b in separate fat jets``: else (each fat jet has at most one tagged b subjet).

N_eff is the effective number of MC events behind it, (sum w)^2 / sum w^2 over events (an event's
configurations summed first). A sample's cross section in a region is that of its files (``xsec_fb x acceptance x`` the weighted
fraction of the file's events in it), averaged over the files of the sample (the yields instead
take the sample's mean xsec x acceptance times the weighted fraction of all its events; the two agree
when the files' weight sums do).

    python -m multiscale.study.btag_sources DIR [DIR ...] [--json out.json] [--before DIR_BEFORE]

``--before``: the same events labelled another way (the same generator commands run by other code, the
files of the same names): each sample's cross section in each region after / before, with its spread over
a bootstrap of the events (the same events resampled in both, so the ratio's uncertainty is paired).
"""

import argparse
import json
from pathlib import Path

import numpy as np

from ..generation import truth_tagging
from ..generation.btagging import FLAVOUR_B, FLAVOUR_C, FLAVOUR_LIGHT, TagEfficiencies
from ..generation.truth_tagging import CONFIGS, FLAVOUR_BRANCHES
from ..evaluation.yields import sample_name
from ..schema import PHASE_SPACES

SOURCES = ("light", "charm", "two b in one fat jet", "b in separate fat jets")
REGIONS = (2, 3, 4)  # >= k tagged subjets


def configuration_sources(flavour):
    """(n, 16) index into SOURCES of every tag configuration of every event (-1 for no tag)."""
    tagged = CONFIGS[None, :, :]  # (1, 16, 4)
    label = flavour[:, None, :]  # (n, 1, 4)
    light = (tagged & (label == FLAVOUR_LIGHT)).any(axis=2)
    charm = (tagged & (label == FLAVOUR_C)).any(axis=2)
    tagged_b = (tagged & (label == FLAVOUR_B)).reshape(len(flavour), 16, 2, 2)
    pair = tagged_b.all(axis=3).any(axis=2)
    source = np.select([light, charm, pair], [0, 1, 2], 3)
    return np.where(CONFIGS.any(axis=1)[None, :], source, -1)


def file_sources(columns, efficiencies):
    """{k: (region fraction, {source: share of the region}, (sum, sum of squares) of the events' region
    weights)} of one file's events."""
    flavour, exists = truth_tagging._flavour_and_exists(columns)
    weight = np.asarray(columns["weight"], dtype=np.float64)
    probability = truth_tagging.configuration_probabilities(flavour, exists, efficiencies) * weight[:, None]
    source = configuration_sources(flavour)
    n_tags = CONFIGS.sum(axis=1)
    result = {}
    for k in REGIONS:
        in_region = probability[:, n_tags >= k]
        total = in_region.sum()
        shares = {name: float(in_region[source[:, n_tags >= k] == i].sum() / total) if total else 0.0
                  for i, name in enumerate(SOURCES)}
        per_event = in_region.sum(axis=1)  # the copies of one event are one MC event
        result[k] = (float(total / weight.sum()), shares, (float(per_event.sum()), float((per_event ** 2).sum())))
    return result


def paired_ratios(after_paths, before_dir, efficiencies=TagEfficiencies(), n_boot=2000, seed=1):
    """{sample: {k: (ratio after / before, bootstrap std)}} for files of the same name in ``before_dir``
    holding the same events (checked: event ids and fat-jet pT)."""
    per_sample = {}
    for path in after_paths:
        after, before = truth_tagging.read_columns(path), truth_tagging.read_columns(Path(before_dir) / Path(path).name)
        same = (np.array_equal(after["event_id"], before["event_id"])
                and np.allclose(after["fj1_pt"], before["fj1_pt"]))
        if not same:
            raise SystemExit(f"btag_sources: {path} and its namesake in {before_dir} hold different events")
        per_sample.setdefault(sample_key(after), []).append((after, before))
    rng = np.random.default_rng(seed)
    ratios = {}
    for sample, pairs in per_sample.items():
        ratios[sample] = {}
        for k in REGIONS:
            # a sample's yield: the mean over its files of xsec x acceptance x the region's weighted fraction
            def parts(columns):
                w = np.asarray(columns["weight"], dtype=np.float64)
                scale = float(np.mean(np.asarray(columns["xsec_fb"]) * np.asarray(columns["acceptance"]))) / w.sum()
                return truth_tagging.region_weights(columns, efficiencies, min_tags=k) * scale
            a = np.concatenate([parts(after) for after, _ in pairs])
            b = np.concatenate([parts(before) for _, before in pairs])
            draws = rng.integers(0, len(a), size=(n_boot, len(a)))
            boot = a[draws].sum(axis=1) / np.maximum(b[draws].sum(axis=1), 1e-300)
            ratios[sample][k] = (float(a.sum() / b.sum()) if b.sum() else float("nan"), float(boot.std()))
    return ratios


def sample_key(columns):
    """The sample of a file's events, named as the yields name it: "qcd (hf_filtered)"."""
    phase_space = int(columns["phase_space"][0]) if "phase_space" in columns else PHASE_SPACES["inclusive"]
    return sample_name(int(columns["process"][0]), phase_space)


def sample_sources(paths, efficiencies=TagEfficiencies()):
    """{sample: {k: {"xsec_fb": cross section in the region, source: share, ...}}} of the files ``paths``."""
    per_sample = {}
    for path in paths:
        columns = truth_tagging.read_columns(path)
        missing = [name for name in FLAVOUR_BRANCHES if name not in columns]
        if missing:
            raise SystemExit(f"btag_sources: {path}: no flavour labels ({', '.join(missing)})")
        xsec = float(np.mean(np.asarray(columns["xsec_fb"]) * np.asarray(columns["acceptance"])))
        per_sample.setdefault(sample_key(columns), []).append((xsec, file_sources(columns, efficiencies)))
    summary = {}
    for sample, files in per_sample.items():
        summary[sample] = {}
        for k in REGIONS:
            xsec = np.array([x * f[k][0] for x, f in files])
            shares = {s: float(np.average([f[k][1][s] for _, f in files], weights=xsec)) if xsec.sum() else 0.0
                      for s in SOURCES}
            sums = np.array([f[k][2] for _, f in files])
            n_eff = float(sums[:, 0].sum() ** 2 / sums[:, 1].sum()) if sums[:, 1].sum() else 0.0
            summary[sample][k] = {"xsec_fb": float(xsec.mean()), "n_eff": n_eff, **shares}
    return summary


def markdown(summary):
    lines = ["| sample | region | cross section (fb) | N_eff | " + " | ".join(SOURCES) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in SOURCES) + " |"]
    for sample, regions in summary.items():
        for k, row in regions.items():
            lines.append(f"| {sample} | >= {k} tags | {row['xsec_fb']:.3g} | {row['n_eff']:.0f} | "
                         + " | ".join(f"{100 * row[s]:.1f}%" for s in SOURCES) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", help="folders of generated .root files (schema files with *_flavour)")
    parser.add_argument("--json", help="write the summary here as well")
    parser.add_argument("--before", help="a folder of the same files labelled another way: ratios after / before")
    args = parser.parse_args(argv)
    paths = sorted(p for d in args.dirs for p in Path(d).glob("*.root"))
    if not paths:
        parser.error(f"no .root file in {' '.join(args.dirs)}")
    summary = sample_sources(paths)
    print(markdown(summary))
    if args.before:
        ratios = paired_ratios(paths, args.before)
        print("\n| sample | " + " | ".join(f">= {k} tags: after / before" for k in REGIONS) + " |")
        print("| --- |" + " --- |" * len(REGIONS))
        for sample, by_k in ratios.items():
            print(f"| {sample} | " + " | ".join(f"{r:.2f} ± {e:.2f}" for r, e in by_k.values()) + " |")
            for k, (r, e) in by_k.items():
                summary[sample][k].update(ratio_to_before=r, ratio_to_before_std=e)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
