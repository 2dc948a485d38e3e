"""Command lines of ``tools/evaluate.py`` and ``tools/compare_predictions.py`` (see docs/evaluation.md).

Conventions as in ``multiscale/cli_common.py``: ``<tool>_parser()``, ``<tool>_main(argv=None) -> int``,
one-line errors.
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from ..cli_common import OneLineParser, fail
from ..definitions import LUMINOSITY_FB
from .compare import compare_files
from .cutbased import CutBasedSelection
from .io import EVERYTHING_ELSE, SCORE_ONLY, PredictionError, read_predictions
from .metrics import MIN_BACKGROUND_EVENTS
from .plotting import plot_roc, plot_scores
from .report import write_json, write_markdown
from .summary import evaluate_models

EVALUATE, COMPARE = "evaluate.py", "compare_predictions.py"
DEFAULT_CUTS = CutBasedSelection()  # the cut-based options' defaults are the selection's own

# ---------------------------------------------------------------------------------------------
# evaluate.py

USAGE_EXAMPLE = """example:
  python tools/evaluate.py pred_cross_s1.root pred_cross_s2.root pred_concat_s1.root --outdir plots \\
      --names cross cross concat --lumi 3000 --mH 1000"""


def evaluate_parser():
    parser = OneLineParser(
        prog=EVALUATE,
        description="Evaluate weaver prediction files: ROC, AUC, background rejection, S/sqrt(B), cut-based reference.",
        epilog=USAGE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("predictions", nargs="+", metavar="PRED.root", help="weaver --predict-output ROOT files")
    add("--outdir", required=True, help="directory for the plots and tables (created)")
    add("--names", nargs="+", metavar="NAME",
        help="model name of each file, in order; repeated names = repeated trainings (default: file stem)")
    add("--signal", default="is_signal", metavar="LABEL",
        help="label of the signal class: the truth branch LABEL and the score score_LABEL (default is_signal)")
    add("--lumi", type=float, default=LUMINOSITY_FB, help=f"integrated luminosity in fb^-1 (default {LUMINOSITY_FB:g})")
    add("--mH", type=float, default=DEFAULT_CUTS.mH,
        help=f"heavy-scalar mass in GeV, centre of the cut-based m_jj window (default {DEFAULT_CUTS.mH:g})")
    add("--min-background-events", "--min-bkg-events", type=int, default=MIN_BACKGROUND_EVENTS, metavar="N",
        help="score cuts keeping fewer effective background MC events, (sum w)^2 / sum w^2, are not scanned; "
             f"working points below it are flagged (default {MIN_BACKGROUND_EVENTS}; --min-bkg-events: the old name)")
    add("--cut-btags", type=int, default=DEFAULT_CUTS.min_btags,
        help=f"cut-based: minimum b-tagged subjets summed over the two fat jets (default {DEFAULT_CUTS.min_btags})")
    add("--cut-sdmass", type=float, nargs=2, default=DEFAULT_CUTS.sdmass_window, metavar=("LO", "HI"),
        help="cut-based: soft-drop mass window in GeV for both fat jets (default %g %g)" % DEFAULT_CUTS.sdmass_window)
    add("--cut-mjj", type=float, nargs=2, default=DEFAULT_CUTS.mjj_window, metavar=("LO", "HI"),
        help="cut-based: m_jj window in units of mH (default %g %g)" % DEFAULT_CUTS.mjj_window)
    return parser


def check_args(args):
    if args.names is not None and len(args.names) != len(args.predictions):
        fail(EVALUATE, f"--names has {len(args.names)} entries for {len(args.predictions)} prediction files; give one per file")
    resolved = [Path(path).resolve() for path in args.predictions]
    twice = next((path for i, path in enumerate(args.predictions) if resolved[i] in resolved[:i]), None)
    if twice is not None:  # a repeated training that is not one: its spread would shrink
        fail(EVALUATE, f"{twice} is given twice: each file is one training; give each file once")
    if args.lumi <= 0:
        fail(EVALUATE, f"--lumi must be positive, got {args.lumi:g}")
    if args.mH <= 0:
        fail(EVALUATE, f"--mH must be positive, got {args.mH:g}")
    if args.cut_sdmass[0] >= args.cut_sdmass[1] or args.cut_mjj[0] >= args.cut_mjj[1]:
        fail(EVALUATE, "--cut-sdmass and --cut-mjj need LO < HI")


def check_outdir(outdir):
    """Stop with one line, before the evaluation runs, when --outdir cannot be created or written."""
    existing = next(p for p in (outdir, *outdir.parents) if p.exists())
    if not existing.is_dir():
        fail(EVALUATE, f"--outdir {outdir}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        fail(EVALUATE, f"--outdir {outdir}: {existing} is not writable")


def group_by_name(predictions, names):
    """{name: [predictions]} in first-appearance order."""
    models = {}
    for name, prediction in zip(names, predictions):
        models.setdefault(name, []).append(prediction)
    return models


def check_mass_point(models, mH):
    """Warn when the signal's own mH observer disagrees with --mH (the m_jj window would be misplaced)."""
    for predictions in models.values():
        for prediction in predictions:
            if "mH" in prediction.arrays:
                masses = np.unique(prediction.arrays["mH"][prediction.is_signal])
                if len(masses) and not np.allclose(masses, mH):
                    print(f"warning: {prediction.path}: signal mH = {', '.join(f'{m:g}' for m in masses)} GeV, "
                          f"but --mH {mH:g} sets the cut-based m_jj window", file=sys.stderr)
                    return


def evaluate_main(argv=None):
    args = evaluate_parser().parse_args(argv)
    check_args(args)
    check_outdir(Path(args.outdir))
    names = args.names or [Path(p).stem for p in args.predictions]
    try:
        # any weaver prediction file: labels and scores needed, the schema's other branches read when present
        predictions = read_predictions(args.predictions, branches=SCORE_ONLY, optional=EVERYTHING_ELSE,
                                       signal=args.signal)
        models = group_by_name(predictions, names)
        check_mass_point(models, args.mH)
        selection = CutBasedSelection(mH=args.mH, sdmass_window=tuple(args.cut_sdmass),
                                      min_btags=args.cut_btags, mjj_window=tuple(args.cut_mjj))
        evaluation = evaluate_models(models, selection, luminosity_fb=args.lumi,
                                     min_background_events=args.min_background_events)
    except PredictionError as err:
        fail(EVALUATE, str(err))

    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    summary = evaluation.summary
    aucs = {name: model["auc"] for name, model in summary["models"].items()}
    roc_paths = [outdir / "roc.png", outdir / "roc.pdf"]
    plot_roc(evaluation.curves, aucs, evaluation.cut_based_points, roc_paths,
             cut_based_definition=selection.short())
    repeated = any(len(curves) > 1 for curves in evaluation.curves.values())
    plot_scores(evaluation.scores, outdir / "scores.png", note="first training of each model" if repeated else "")
    write_json(summary, outdir / "metrics.json")
    table = write_markdown(summary, outdir / "metrics.md")

    print(table)
    for figure, why in summary["skipped"].items():
        print(f"{EVALUATE}: skipped {figure}: {why}", file=sys.stderr)
    for path in [*roc_paths, outdir / "scores.png", outdir / "metrics.json", outdir / "metrics.md"]:
        print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------------------------------------
# compare_predictions.py


def compare_parser():
    parser = OneLineParser(
        prog=COMPARE,
        description="Compare two weaver prediction files event by event (e.g. PyTorch vs ONNX scores).",
        epilog="example:\n  python tools/compare_predictions.py pred.root pred_onnx.root --tolerance 1e-4",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("reference", help="weaver prediction file (ROOT)")
    parser.add_argument("candidate", help="weaver prediction file of the same events")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest |score difference| accepted (default %(default)s)")
    return parser


def compare_main(argv=None):
    args = compare_parser().parse_args(argv)
    try:
        comparison = compare_files(args.reference, args.candidate)
    except PredictionError as err:
        fail(COMPARE, str(err))
    print(comparison.summary())
    if not comparison.agrees(args.tolerance):
        fail(COMPARE, f"predictions differ by more than {args.tolerance}")
    return 0
