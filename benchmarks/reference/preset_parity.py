"""Physics parity of a model change at m_H = 1 TeV: the mass scan's cross trainings with extra network options.

    python -m benchmarks.reference.preset_parity --study-data datasets/mass_scan --out training/parity/heads2 \\
        --folds 0 1 2 3 4 -o jet_heads 2 -o obj_heads 2 [--baseline training/parity/base/parity.json]

Each fold is trained as the mass scan (workflow/rules/train.smk) trains ``cross`` (the study's FEATURES, or ``--features``;
the study's recipe of config/mass_scan.yaml, ``-o seed fold+1``, every event in memory) on that study's events
(``--study-data``: its ``generated/``, ``truth_train_physical/`` and ``truth_test/``; file chunk c is in
fold c % 5), with the extra ``-o`` options, and its test-fold prediction is scored as the study
scores it (cross-section weighted AUC). A fold whose prediction exists is not trained again. The
result (``OUT/parity.json``): the AUC per fold, their mean and standard deviation, and with
``--baseline`` (another run's parity.json) the paired difference over the common folds. The spread
of repeated trainings at 1 TeV is in docs/results.md; a change becomes a preset only within it.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

from multiscale.definitions import PRESETS
from multiscale.driver_options import study_recipe
from multiscale.evaluation.io import read_prediction
from multiscale.evaluation.metrics import auc
from multiscale.evaluation.yields import yield_weights
from multiscale.study.compare import paired_difference
from multiscale.study.mass_scan import LUMINOSITY_FB

from .. import REPO_ROOT

MASS = 1000
FOLDS = 5
STUDY_CONFIG = yaml.safe_load((REPO_ROOT / "config" / "mass_scan.yaml").read_text())
STUDY_FEATURES = STUDY_CONFIG["features"]  # the study's preset
STUDY_RECIPE = study_recipe(STUDY_CONFIG)  # the driver makes each epoch one pass over the events in memory


def chunk_fold(path):
    return int(Path(path).stem.rpartition("_")[2]) % FOLDS


def link_split(study_data, split, fold):
    """The study's layout for one fold: the other folds' files in train/, this fold's in test/."""
    study_data = Path(study_data).resolve()
    signal = sorted((study_data / "generated").glob(f"hh4b_mH{MASS}_*.root"))
    for part, copies, keep in (("train", "truth_train_physical", lambda f: chunk_fold(f) != fold),
                               ("test", "truth_test", lambda f: chunk_fold(f) == fold)):
        directory = split / part
        directory.mkdir(parents=True, exist_ok=True)
        for f in signal + sorted((study_data / copies).glob("*.root")):
            link = directory / f.name
            if keep(f) and not link.exists():
                link.symlink_to(f)
    if not any((split / "train").glob("*.root")) or not any((split / "test").glob("*.root")):
        sys.exit(f"preset_parity: error: no event files for fold {fold} under {study_data}")


def prediction_file(out, features, fold):
    return out / f"cross_{features}_fold{fold}" / "pred.root"


def train(split, out, fold, options, features):
    """One training of the study's cross recipe; returns its wall time (None if it already existed)."""
    prediction = prediction_file(out, features, fold)
    if prediction.is_file():
        return None
    extra = [x for name, value in options for x in ("-o", name, value)]
    start = time.perf_counter()
    with open(out / f"cross_{features}_fold{fold}.stdout", "w") as log:
        subprocess.run(["./train_multiscale.sh", "cross", features, "-o", "seed", str(fold + 1), *STUDY_RECIPE, *extra], cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                       env={**os.environ, "DATADIR_hh4b": str(split), "MS_OUTDIR": str(out), "COMMENT": f"fold{fold}"},
                       check=True)
    return time.perf_counter() - start


def weighted_auc(path):
    prediction = read_prediction(path)
    return auc(prediction.is_signal, prediction.score, sample_weight=yield_weights(prediction, LUMINOSITY_FB))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reference.preset_parity",
                                     description=__doc__.split("\n\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study-data", required=True, help="the mass scan's event directory (STUDY_DIR)")
    parser.add_argument("--out", required=True, type=Path, help="trainings and parity.json go here")
    parser.add_argument("--folds", nargs="+", type=int, default=list(range(FOLDS)))
    parser.add_argument("-o", dest="options", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="network option, as weaver's -o (repeatable)")
    parser.add_argument("--features", default=STUDY_FEATURES, choices=list(PRESETS),
                        help="train_multiscale.sh FEATURES (default %(default)s, the study's)")
    parser.add_argument("--baseline", type=Path, help="another run's parity.json, for the paired difference")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"mass": MASS, "features": args.features, "options": args.options, "recipe": STUDY_RECIPE, "folds": {}}
    for fold in args.folds:
        split = args.out / "splits" / f"fold{fold}"
        link_split(args.study_data, split, fold)
        wall = train(split, args.out, fold, args.options, args.features)
        result["folds"][fold] = {"auc": weighted_auc(prediction_file(args.out, args.features, fold)),
                                 "train_wall_s": wall, "loadavg": os.getloadavg()}
        print(f"fold {fold}: AUC {result['folds'][fold]['auc']:.4f}"
              + (f" (trained in {wall:.0f} s)" if wall else ""), flush=True)
    aucs = [entry["auc"] for entry in result["folds"].values()]
    result["auc_mean"] = statistics.mean(aucs)
    result["auc_sd"] = statistics.stdev(aucs) if len(aucs) > 1 else None
    print(f"AUC {result['auc_mean']:.4f}" + (f" ± {result['auc_sd']:.4f}" if result["auc_sd"] else "") + f" over {len(aucs)} folds")
    if args.baseline:
        base = json.loads(args.baseline.read_text())["folds"]
        common = sorted(set(map(str, result["folds"])) & set(base))
        result["baseline"] = str(args.baseline)
        result["difference_vs_baseline"] = paired_difference([result["folds"][int(f)]["auc"] for f in common],
                                                             [base[f]["auc"] for f in common])
        d = result["difference_vs_baseline"]
        print(f"against {args.baseline}: {d['mean']:+.4f} ± {d['sem'] or 0:.4f} over {d['n_pairs']} folds (p = {d['p_value']})")
    path = args.out / "parity.json"
    path.with_suffix(".part").write_text(json.dumps(result, indent=1))
    os.replace(path.with_suffix(".part"), path)


if __name__ == "__main__":
    main()
