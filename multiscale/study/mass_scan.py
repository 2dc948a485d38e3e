"""Evaluate the mass scan (the workflow's evaluate rule, ``workflow/Snakefile``): per model, mass point and fold the
weighted ROC figures, the rejection at 30% and 50% signal efficiency with its bootstrap uncertainty, the best
S/sqrt(B) and the expected 95% CL limits (asymptotic CLs): binned score, and from a smooth fit of the
background's m_JJ after the score cut (with the check that the cut does not sculpt m_JJ); per mass point and fold
the cut-based selection, optimised on the other folds and evaluated on this one; paired comparisons (limits:
cross vs concat, parameterised vs per-mass cross, ML vs cuts; rejections: fusion vs concatenation and vs each
scale alone); plots.

Every choice on validation, never on test: training r is tested on fold r and predicts its validation fold
(r + 1) % folds, which it did not train on (``OUT/.../pred_validation.root``, ``pred_mH<m>_validation.root``);
its best score cut and the score bins of its limit are chosen there. The cuts are optimised on the folds other than
the test fold (they train on nothing).

The limits combine tag categories (``--categories 3 4``: exactly 3 and 4 b-tagged subjets): each category's copies
get their own bins (the networks' score bins, the cut-based selection's count), each bin held to the N_eff floor,
and the likelihood, whose bins are independent, takes every category's bins side by side.

    python -m multiscale.study.mass_scan --out training/mass_scan --data datasets/mass_scan \\
        --masses 600 800 1000 1500 2000 --models kin jets concat cross cross_param

Layout read (written by the workflow): ``OUT/mH<m>/<model>_<features>_fold<f>/pred.root``,
``OUT/param/cross_param_<features>_fold<f>/pred_mH<m>.root``, and the events, file by file as the workflow hands
them (``--signal-events MASS FILE...`` per mass, ``--background-events``, ``--training-backgrounds``; files named
``<stem>_<chunk>.root``, chunk c in fold c % folds), or found under ``--data DIR``: ``truth_test/hh4b_mH<m>_*.root``
(or ``generated/``) the signal, every other file of ``truth_test/`` a background (one copy per b-tag class).
Writes ``OUT/results.json``, ``OUT/results.md`` and ``OUT/img/*.png``.

This module is the command and its process pool; the parts: ``predictions`` (the files), ``training_eval`` (one
training), ``cut_folds`` (the cut-based reference), ``comparisons`` (summaries, paired tests, the taggers' bootstrap),
``report`` and ``plots``.
"""

import argparse
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from ..definitions import BENCHMARK_MASS, LUMINOSITY_FB
from ..evaluation import tagger_comparison
from ..evaluation.io import read_prediction
from ..evaluation.metrics import MIN_BACKGROUND_EVENTS
from ..evaluation.report import jsonable
from . import plots, report
from .comparisons import comparisons, pooled_rejections, rejection_bootstraps, summarise, tagger_comparisons
from .cut_folds import cut_based_folds
from .predictions import (
    files_in, find_predictions, in_tag_region, pooled_test_samples, read_test_sample, sculpting_plot, study_files,
    training_composition,
)
from .report import CUT_BASED, CUT_BASED_POOLED
from .training_eval import category_labels, evaluate_training
from .workflow import check_categories, validation_path


# --- the pool's jobs (one process each) -------------------------------------------------------------------------


def _cut_based(job):
    return cut_based_folds(*job)


def _evaluate_test_fold(job):
    """The trainings tested on one (mass, fold), ``trainings``: {model: test prediction}: each evaluated
    (training_eval.evaluate_training) and all bootstrapped together (comparisons.rejection_bootstraps), every
    prediction read once. ({model: (entry, ROC)}, bootstrap)."""
    trainings, min_tags, luminosity_fb, n_bins, min_events, cut_efficiency, categories, mass, plot_of, n_bootstrap = job
    tests, evaluated = {}, {}
    for model, path in trainings.items():
        tests[model], validation = (in_tag_region(read_prediction(p), min_tags) for p in (path, validation_path(path)))
        evaluated[model] = evaluate_training(tests[model], validation, luminosity_fb, n_bins, min_events,
                                             cut_efficiency, categories=categories, mass=mass,
                                             sculpting_plot=plot_of[model])
    return evaluated, rejection_bootstraps(tests, luminosity_fb, n_bootstrap)


def _pooled_bootstrap(job):
    paths, min_tags, luminosity_fb, n_bootstrap = job
    return rejection_bootstraps({model: read_test_sample(files, min_tags) for model, files in paths.items()},
                                luminosity_fb, n_bootstrap)


# --- command line ----------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m multiscale.study.mass_scan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the study's output directory (trainings, results)")
    parser.add_argument("--predictions", nargs="+", metavar="FILE",
                        help="the prediction files to evaluate, test and validation folds (default: those found under "
                        "--out)")
    parser.add_argument("--data", help="the study's event directory (generated/, truth_test/, truth_train_physical/): "
                        "each mass's signal by its name, every other file as background; or give the files:")
    parser.add_argument("--signal-events", nargs="+", action="append", default=[], metavar=("MASS", "FILE"),
                        help="the signal's test files at MASS (once per mass)")
    parser.add_argument("--background-events", nargs="+", default=[], metavar="FILE",
                        help="the test copies of every background sample (the cut-based reference, the test sets)")
    parser.add_argument("--training-backgrounds", nargs="+", default=[], metavar="FILE",
                        help="the training copies of every background sample (what the networks saw)")
    parser.add_argument("--masses", type=float, nargs="+", required=True)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--features", default="paperb")
    parser.add_argument("--folds", type=int, default=5, help="folds the events were cut into")
    parser.add_argument("--ref-mass", type=float, default=BENCHMARK_MASS, help="mass point of the ROC plot (default %(default)g)")
    parser.add_argument("--luminosity", type=float, default=LUMINOSITY_FB, help=f"fb^-1 (default: {LUMINOSITY_FB:g})")
    parser.add_argument("--bins", type=int, default=10, help="score bins before merging, for the limits")
    parser.add_argument("--min-events", type=float, default=MIN_BACKGROUND_EVENTS,
                        help="N_eff floor of the background on the test fold, for the networks' score bins and "
                        f"best cut and for the cut-based selection alike (default: {MIN_BACKGROUND_EVENTS})")
    parser.add_argument("--min-tags", type=int,
                        help="evaluate only the copies with at least this many b-tagged subjets, networks and cuts "
                        "alike (a region inside the one the study truth-tagged into; default: the first of "
                        "--categories, else all)")
    parser.add_argument("--categories", type=int, nargs="+", default=[], metavar="TAGS",
                        help="the tag categories the limits combine, by their lowest number of b-tagged subjets, each "
                        "up to the next (3 4: exactly 3, and 4); default: one category, every copy")
    parser.add_argument("--bootstrap", type=int, default=tagger_comparison.N_BOOTSTRAP,
                        help="replicates of the bootstrap over test events of the rejections (default: "
                        f"{tagger_comparison.N_BOOTSTRAP})")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="parallel processes (default: all cores)")
    args = parser.parse_args(argv)
    categories = args.categories
    if args.min_tags is None:
        args.min_tags = categories[0] if categories else 0
    if categories:
        try:
            check_categories(categories, args.min_tags)
        except ValueError as error:
            parser.error(f"--{error} (--min-tags {args.min_tags})")
    if bool(args.data) == bool(args.signal_events or args.background_events):
        parser.error("give either --data DIR or the files (--signal-events MASS FILE... per mass, --background-events "
                     "FILE..., --training-backgrounds FILE...)")
    if args.data:
        args.files = files_in(args.data, args.masses)
    else:
        signal = {float(mass): files for mass, *files in args.signal_events}
        missing = [f"{mass:g}" for mass in args.masses if not signal.get(mass)]
        if missing or not args.background_events:
            parser.error(f"no signal files at m_H = {', '.join(missing)} GeV (--signal-events MASS FILE...)" if missing
                         else "no background files (--background-events FILE...)")
        args.files = study_files(signal, args.background_events, args.training_backgrounds)
    return args


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    found = find_predictions(out, args.models, args.masses, args.features, args.predictions)
    if not found:
        raise SystemExit(f"mass_scan: error: no prediction file under {out} for models {args.models}")
    jobs = [(model, mass, fold, path) for model, by_mass in found.items() for mass, by_fold in by_mass.items()
            for fold, path in by_fold.items()]
    folds_at = {mass: sorted({fold for _, m, fold, _ in jobs if m == mass}) for mass in args.masses}
    results, curves = {}, {}
    (out / "img").mkdir(parents=True, exist_ok=True)
    # one process per core: the test folds are independent; the cuts first, since each training is also
    # evaluated at its fold's cut-based signal efficiency
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        cut_masses = [mass for mass in args.masses if folds_at[mass]]
        cuts = pool.map(_cut_based, [(args.files, mass, folds_at[mass], args.folds, args.luminosity, args.min_events,
                                      args.min_tags, args.categories, sculpting_plot(out, CUT_BASED, mass))
                                     for mass in cut_masses])
        for mass, (by_fold, pooled) in zip(cut_masses, tqdm(cuts, total=len(cut_masses), desc="optimising cuts",
                                                            unit="mass", disable=None)):
            results.setdefault(CUT_BASED, {})[mass] = by_fold
            if pooled is not None:
                results.setdefault(CUT_BASED_POOLED, {})[mass] = {0: pooled}

        def cut_efficiency(mass, fold):
            return results.get(CUT_BASED, {}).get(mass, {}).get(fold, {}).get("signal_efficiency")

        # the trainings of each test fold together: each evaluated, and one bootstrap over its events for all
        test_folds = [(mass, fold) for mass in args.masses for fold in folds_at[mass]]
        trainings = {(mass, fold): {model: path for model, m, f, path in jobs if (m, f) == (mass, fold)}
                     for mass, fold in test_folds}
        evaluated = pool.map(_evaluate_test_fold, [
            (trainings[mass, fold], args.min_tags, args.luminosity, args.bins, args.min_events,
             cut_efficiency(mass, fold), args.categories, mass,
             {model: sculpting_plot(out, model, mass) if fold == min(found[model][mass]) else None
              for model in trainings[mass, fold]}, args.bootstrap)
            for mass, fold in test_folds])
        by_test_fold, per_training = {}, {}
        for (mass, fold), (entries, boot) in zip(test_folds, tqdm(evaluated, total=len(test_folds),
                                                                  desc="evaluating trainings", unit="fold",
                                                                  disable=None)):
            by_test_fold.setdefault(mass, {})[fold] = boot
            for model, (entry, curve) in entries.items():
                per_training[model, mass, fold] = entry, curve
                if model in boot["per_model"]:
                    entry["rejection_bootstrap"] = {
                        f"{eff:.2f}": {"rejection": boot["rejections"][model][eff], **interval,
                                       **({"note": boot["note"]} if "note" in boot else {})}
                        for eff, interval in boot["per_model"][model].items()}
        for model, mass, fold, _ in jobs:  # in the order of the models, masses and folds
            entry, curve = per_training[model, mass, fold]
            results.setdefault(model, {}).setdefault(mass, {})[fold] = entry
            if mass == args.ref_mass:
                curves.setdefault(model, []).append(curve)

        # the out-of-fold predictions together: one large test sample common to the taggers, no event seen by the
        # training that scored it
        pooled_paths = pooled_test_samples(jobs, args.masses)
        pooled = dict(zip(pooled_paths, tqdm(pool.map(_pooled_bootstrap, [
            (paths, args.min_tags, args.luminosity, args.bootstrap) for paths in pooled_paths.values()]),
            total=len(pooled_paths), desc="bootstrapping the pooled test sample", unit="mass", disable=None)))

    summary = {
        "luminosity_fb": args.luminosity,
        "masses": args.masses,
        "min_background_events": args.min_events,
        # the analysis region and the tag categories the limits combine
        "min_tags": args.min_tags,
        "tag_categories": category_labels(args.categories) if args.categories else ["all"],
        "n_folds": args.folds,
        "summary": {model: {f"{mass:g}": summarise(by_mass[mass]) for mass in args.masses if mass in by_mass}
                    for model, by_mass in results.items()},
        "comparisons": comparisons(results, args.masses, args.folds),
        "tagger_comparisons": tagger_comparisons(by_test_fold, args.masses, args.folds),
        "pooled_rejections": {f"{mass:g}": pooled_rejections(boot, len(pooled_paths[mass][next(iter(boot["rejections"]))]))
                              for mass, boot in pooled.items()},
        "bootstrap_replicates": args.bootstrap,
        "training_background": training_composition(args.files, args.luminosity),
        "per_training": {model: {f"{mass:g}": {str(f): e for f, e in by_fold.items()} for mass, by_fold in by_mass.items()}
                         for model, by_mass in results.items()},
    }
    (out / "results.json").write_text(json.dumps(jsonable(summary), indent=1, sort_keys=True) + "\n")
    plots.limit_vs_mass(summary, out / "img" / "limit_vs_mass.png", "limit_fb", "with background MC stat. uncertainty")
    plots.limit_vs_mass(summary, out / "img" / "limit_vs_mass_no_mc_stat.png", "limit_no_mc_stat_fb",
                        "without background MC stat. uncertainty")
    plots.limit_vs_mass(summary, out / "img" / "limit_vs_mass_syst.png", "limit_syst_fb",
                        "with MC stat. and systematic uncertainties (b-tagging, background normalisation)")
    plots.limit_vs_mass(summary, out / "img" / "limit_vs_mass_smooth.png", "limit_smooth_fb",
                        "background from a dijet-function fit of m_JJ after the cut chosen on validation")
    plots.limit_vs_mass(summary, out / "img" / "limit_vs_mass_smooth_decorrelated.png", "limit_smooth_decorrelated_fb",
                        "background from a dijet-function fit of m_JJ after the mass-decorrelated cut")
    plots.significance_vs_mass(summary, out / "img" / "significance_vs_mass.png")
    if curves:
        reference = results.get(CUT_BASED, {}).get(args.ref_mass, {})
        plots.roc_at(curves, summary, reference, args.ref_mass, out / "img" / f"roc_mH{args.ref_mass:g}.png")
    (out / "results.md").write_text(report.markdown(summary))
    print(f"wrote {out / 'results.json'}, {out / 'results.md'} and the plots in {out / 'img'}")


if __name__ == "__main__":
    main()
