"""Two runs of the mass scan compared training by training: the same model, mass point and fold in
both (the same test events), e.g. a run after a fix against the run before it.

    python -m multiscale.study.compare_runs training/mass_scan/results.json training/mass_scan_physical/results.json

Prints a markdown table: per model and mass, the means over the common folds before and after, the
paired AUC difference and the paired ratio of the expected limits (with and without the background
MC statistics), each with its t-test p-value (multiscale.study.compare).
"""

import argparse
import json

from ..evaluation.summary import usable_spread
from .compare import log_ratio, paired_difference
from .comparisons import figures
from .report import difference_text

LIMITS = ("limit_fb", "limit_no_mc_stat_fb")


def compare_runs(before, after):
    """{(model, mass): {"folds", "auc", "limit_fb", "limit_no_mc_stat_fb"}} over the trainings that both
    results (the dicts of results.json) hold; each figure is (mean before, mean after, paired test)."""
    rows = {}
    for model, by_mass in after["per_training"].items():
        for mass, by_fold in by_mass.items():
            earlier = before["per_training"].get(model, {}).get(mass, {})
            folds = sorted(set(by_fold) & set(earlier), key=int)
            if not folds:
                continue
            old = [figures(earlier[f]) for f in folds]
            new = [figures(by_fold[f]) for f in folds]
            row = {"folds": folds}
            for name in ("auc", *LIMITS):
                a, b = [x[name] for x in new], [x[name] for x in old]
                test = paired_difference(a, b) if name == "auc" else log_ratio(a, b)
                row[name] = (usable_spread(b)["mean"], usable_spread(a)["mean"], test)
            rows[(model, float(mass))] = row
    return dict(sorted(rows.items(), key=lambda item: (item[0][1], item[0][0])))


def _number(value, fmt):
    return "–" if value is None else format(value, fmt)


def _ratio(test):
    """xRATIO (p = ...) of a log_ratio result."""
    if test["ratio"] is None:
        return "–"
    return f"x{test['ratio']:.2f}" + (f" (p = {test['p_value']:.3f})" if test["p_value"] is not None else "")


def markdown(rows):
    lines = ["| model @ m_H | folds | AUC before -> after | AUC after − before | limit w/o MC stat. before -> after [fb] "
             "| ratio after/before | limit before -> after [fb] | ratio after/before |", "|---|---|---|---|---|---|---|---|"]
    for (model, mass), row in rows.items():
        auc_before, auc_after, auc_test = row["auc"]
        cells = [f"{model} @ {mass:g}", ",".join(row["folds"]),
                 f"{_number(auc_before, '.4f')} -> {_number(auc_after, '.4f')}", difference_text(auc_test)]
        for name in ("limit_no_mc_stat_fb", "limit_fb"):
            limit_before, limit_after, test = row[name]
            cells += [f"{_number(limit_before, '.3g')} -> {_number(limit_after, '.3g')}", _ratio(test)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m multiscale.study.compare_runs", description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="results.json of the earlier run")
    parser.add_argument("after", help="results.json of the later run")
    args = parser.parse_args(argv)
    runs = []
    for path in (args.before, args.after):
        try:
            with open(path) as f:
                runs.append(json.load(f))
        except (OSError, ValueError) as err:
            parser.error(f"{path}: {err}")
    rows = compare_runs(*runs)
    if not rows:
        parser.error(f"no training (model, mass, fold) is in both {args.before} and {args.after}")
    print(markdown(rows), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
