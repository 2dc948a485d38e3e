"""Command lines of ``tools/generate_events.py`` and ``tools/truth_tag.py`` (see docs/generation.md).

Conventions as in ``multiscale/cli_common.py``: ``<tool>_parser()``, ``<tool>_main(argv=None) -> int``,
one-line errors. The work itself is done by ``run.py`` (a run's chunks; one chunk: ``chunk.py``) and
``truth_tagging.py``.
"""

import argparse
import math
import os
import signal
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

from ..cli_common import OneLineParser, fail
from ..definitions import preselection_options  # noqa: F401  (the config's cuts as options; re-exported)
from ..schema import PROCESS_CODES
from . import hf_filter, manifest, merging, truth_tagging
from .btagging import TagEfficiencies
from .pythia_setup import SQRT_S_GEV, GenerationError, check_extra_setting
from .run import RunConfig, generate, kept_chunks
from .sources import describe_skipped, prepare_inputs
from .writer import remove_stale

GENERATE, TRUTH_TAG = "generate_events.py", "truth_tag.py"
HIGGS_MASS = 125.0
# the generator's defaults are RunConfig's (the preselection's: definitions.Preselection): read, not repeated
DEFAULTS = {field.name: field.default for field in fields(RunConfig)}

# ---------------------------------------------------------------------------------------------
# generate_events.py


def probability(text):
    """An argparse type: a number in [0, 1] (NaN and inf refused too)."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {text}")
    return value


def add_tag_efficiency_options(add):
    """The b-tagging working point, defaults from ``TagEfficiencies``; checked where it is parsed, so
    that every tool taking it refuses the same values."""
    default = TagEfficiencies()
    add("--btag-eff", type=probability, default=default.b, help=f"b-jet tagging efficiency (default: {default.b})")
    add("--ctag-mistag", type=probability, default=default.c, help=f"c-jet mistag rate (default: {default.c})")
    add("--light-mistag", type=probability, default=default.light,
        help=f"light-jet mistag rate (default: {default.light})")


def generate_parser():
    parser = OneLineParser(
        prog=GENERATE,
        description="Generate Pythia 8 events (pp, 14 TeV), cluster them with FastJet and write ntuples "
        "following multiscale/schema.py.",
    )
    add = parser.add_argument
    add("--process", required=True, choices=sorted(PROCESS_CODES),
        help="physics process; with --lhe/--hepmc the label (and is_* branches) the events get")
    add("--events", type=int, metavar="N", help="number of accepted (written) events; with --lhe/--hepmc: read the "
        "first N events of the files (default: all)")
    inputs = parser.add_mutually_exclusive_group()
    inputs.add_argument("--lhe", nargs="+", metavar="FILE", help="Les Houches files (plain or gzipped) to shower and "
                        "hadronise with Pythia, one output file each; beams and cross section from the files")
    inputs.add_argument("--hepmc", nargs="+", metavar="FILE", help="showered HepMC3 files (ASCII, optionally "
                        "compressed), one output file each; weights and cross section from the files")
    add("--no-btag-labels", action="store_true",
        help="--hepmc files without decayed hadrons in their record: label every jet light")
    add("--merging", choices=merging.REQUESTS, default=DEFAULTS["merging"],
        help="--lhe: auto (default): the merging the MadGraph header says (MLM, FxFx, CKKW-L); none: shower "
        "every event as it is, overlapping jet multiplicities included")
    add("--merging-scale", type=float, metavar="GEV", help="--lhe: merging scale (MLM/FxFx JetMatching:qCut, CKKW-L "
        "Merging:TMS in kT) where the header has none (FxFx, CKKW-L without ktdurham/ptlund) or to override it")
    add("--merging-process", metavar="PROC", help="--lhe, CKKW-L: Pythia's Merging:Process (e.g. pp>e+e-) when the "
        "header's process cannot be translated")
    add("--outdir", required=True, help="output directory (created if missing)")
    add("--seed", type=int, default=DEFAULTS["seed"], help="random seed of the run (default: %(default)s)")
    add("--jobs", type=int, default=DEFAULTS["jobs"], help="parallel processes, one chunk each (default: %(default)s)")
    add("--events-per-file", type=int, default=DEFAULTS["events_per_file"], metavar="K", help="accepted events per "
        "file; with --lhe/--hepmc: input events per output file, each file cut into ranges of K (default: %(default)s)")
    add("--chunks", type=int, nargs="+", metavar="C", help="generate only these files of the run (0-based chunk "
        "indices; a chunk's events depend only on --seed, --events-per-file and its index, so the file is the one a "
        "whole run writes); no manifest is written")
    add("--mH", type=float, default=DEFAULTS["mH"], help="heavy scalar mass in GeV, hh4b only (default: %(default)g)")
    add("--pthat-min", type=float, default=DEFAULTS["pthat_min"],
        help="PhaseSpace:pTHatMin for qcd/ttbar in GeV (default: %(default)g)")
    add("--pthat-bias", type=float, default=DEFAULTS["pthat_bias"], metavar="POW",
        help="qcd/ttbar: oversample high pT-hat by (pT-hat/pTHatMin)^POW, with compensating event weights "
        "(PhaseSpace:bias2Selection; default: %(default)g, unweighted)")
    add("--hf-filter", choices=sorted(hf_filter.MODES), default=DEFAULTS["hf_filter"],
        help="qcd/ttbar: keep only the events with a b quark in each of the two leading parton-level jets "
        "(require) or only the others (veto); the two samples add up to the inclusive one (docs/generation.md)")
    add("--pythia-setting", dest="pythia_settings", action="append", default=[], metavar="'KEY = VALUE'",
        help="qcd/ttbar/hh4b: one more Pythia setting, read after the process's (repeat the option for more; e.g. "
             "'PartonLevel:MPI = off'); recorded in the sidecars")
    add("--max-constituents", type=int, default=DEFAULTS["max_constituents"],
        help="constituents kept per fat jet (default: %(default)s)")
    add("--xsec-fb", type=float, default=DEFAULTS["xsec_fb"],
        help="cross section in fb for the weights (default: Pythia's sigmaGen)")
    add("--fj1-ptmin", type=float, default=DEFAULTS["fj1_ptmin"],
        help="leading fat-jet pT cut in GeV (default: %(default)g)")
    add("--fj2-ptmin", type=float, default=DEFAULTS["fj2_ptmin"],
        help="subleading fat-jet pT cut in GeV (default: %(default)g)")
    add("--fj-etamax", type=float, default=DEFAULTS["fj_etamax"], help="fat-jet |eta| cut (default: %(default)g)")
    add_tag_efficiency_options(add)
    return parser


def parse_config(argv=None):
    """Parse and validate the command line into a ``RunConfig`` (exits with a one-line error)."""
    parser = generate_parser()
    args = parser.parse_args(argv)
    files = args.lhe or args.hepmc
    args.input_format = "lhe" if args.lhe else "hepmc" if args.hepmc else "pythia"
    args.inputs = tuple(str(Path(path).resolve()) for path in files or ())
    del args.lhe, args.hepmc
    if files:
        if args.pthat_bias:
            parser.error("--pthat-bias applies to Pythia's built-in qcd and ttbar, not to --lhe/--hepmc files")
        if args.hf_filter:
            parser.error("--hf-filter applies to Pythia's built-in qcd and ttbar, not to --lhe/--hepmc files")
        if args.pythia_settings:
            parser.error("--pythia-setting applies to Pythia's built-in processes, not to --lhe/--hepmc files")
        if args.events is not None and args.events <= 0:
            parser.error(f"--events must be positive, got {args.events}")
        args.events = args.events or 0  # 0: every event of the files
    elif args.events is None:
        parser.error("--events is required (or --lhe / --hepmc files to read)")
    elif args.events <= 0:
        parser.error(f"--events must be positive, got {args.events}")
    if args.events_per_file <= 0:
        parser.error(f"--events-per-file must be positive, got {args.events_per_file}")
    if args.jobs <= 0:
        parser.error(f"--jobs must be positive, got {args.jobs}")
    if args.chunks is not None:
        args.chunks = tuple(sorted(set(args.chunks)))
        if not files:  # an input run's chunks are known once its files are read (generate_main)
            _check_chunks(parser, RunConfig(**vars(args)))
    if args.seed < 0:
        parser.error(f"--seed must be non-negative, got {args.seed}")
    if args.max_constituents <= 0:
        parser.error(f"--max-constituents must be positive, got {args.max_constituents}")
    _check_physics(parser, args)
    _check_merging(parser, args)
    if not 0.0 <= args.pthat_bias <= 8.0:
        parser.error(f"--pthat-bias must lie in [0, 8], got {args.pthat_bias}")
    if args.pthat_bias > 0 and args.process not in ("qcd", "ttbar"):
        parser.error(f"--pthat-bias applies to qcd and ttbar, not {args.process}")
    if args.hf_filter and args.process not in ("qcd", "ttbar"):
        parser.error(f"--hf-filter applies to qcd and ttbar, not {args.process}")
    for line in args.pythia_settings:
        problem = check_extra_setting(line)
        if problem:
            parser.error(f"--pythia-setting {line!r}: {problem}")
    args.pythia_settings = tuple(args.pythia_settings)
    if args.xsec_fb is not None and args.xsec_fb <= 0:
        parser.error(f"--xsec-fb must be positive, got {args.xsec_fb}")
    problem = _unwritable(args.outdir)
    if problem:
        parser.error(f"cannot write to --outdir {args.outdir}: {problem}")
    return RunConfig(**vars(args))


def _check_chunks(parser, config):
    """--chunks within the run's chunks (an input run's: the ranges of its files' events)."""
    if config.chunks is None:
        return
    n_chunks = config.n_chunks
    outside = [c for c in config.chunks if not 0 <= c < n_chunks]
    if outside:
        parser.error(f"--chunks {' '.join(map(str, outside))}: the run has chunks 0 to {n_chunks - 1}")


def _check_physics(parser, args):
    """Refuse settings Pythia would fail on without saying why (before it is even started)."""
    floats = ("mH", "pthat_min", "pthat_bias", "xsec_fb", "fj1_ptmin", "fj2_ptmin", "fj_etamax")
    for name in floats:
        value = getattr(args, name)
        if value is not None and not math.isfinite(value):
            parser.error(f"--{name.replace('_', '-')} must be a finite number, got {value}")
    builtin = args.input_format == "pythia"  # input files bring their own process and energy
    if builtin and args.process == "hh4b":
        if args.mH <= 2 * HIGGS_MASS:
            parser.error(f"--mH {args.mH:g} GeV is not above the hh threshold 2 x {HIGGS_MASS:g} GeV")
        if args.mH >= SQRT_S_GEV:
            parser.error(f"--mH {args.mH:g} GeV is beyond the collision energy sqrt(s) = {SQRT_S_GEV:g} GeV")
    if builtin and args.process in ("qcd", "ttbar") and not 0 < args.pthat_min < SQRT_S_GEV / 2:
        parser.error(f"--pthat-min must lie in (0, sqrt(s)/2 = {SQRT_S_GEV / 2:g}) GeV, got {args.pthat_min:g}")
    for name in ("fj1_ptmin", "fj2_ptmin"):
        if not 0 <= getattr(args, name) < SQRT_S_GEV / 2:
            parser.error(f"--{name.replace('_', '-')} must lie in [0, {SQRT_S_GEV / 2:g}) GeV, got {getattr(args, name):g}")
    if args.fj_etamax <= 0:
        parser.error(f"--fj-etamax must be positive, got {args.fj_etamax:g}")


def _check_merging(parser, args):
    given = [name for name in ("merging_scale", "merging_process") if getattr(args, name) is not None]
    if args.merging != "auto":
        given.append("merging")
    if given and args.input_format != "lhe":
        parser.error(f"--{given[0].replace('_', '-')} applies to --lhe files only")
    if args.merging_scale is not None and not (math.isfinite(args.merging_scale) and args.merging_scale > 0):
        parser.error(f"--merging-scale must be a positive number of GeV, got {args.merging_scale}")
    if args.merging == "none" and len(given) > 1:
        parser.error("--merging none sets up no merging: --merging-scale / --merging-process do not apply")


def _unwritable(outdir):
    """Why files cannot be created in ``outdir`` (None if they can)."""
    try:
        Path(outdir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=outdir):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that the same cleanup runs."""

    signum = signal.SIGTERM


def _raise_terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: let the cleanup finish
    raise _Terminated()


def generate_main(argv=None):
    config = parse_config(argv)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    where = f"{manifest.run_name(config)} in {os.path.abspath(config.outdir)}"
    try:
        config, inputs = prepare_inputs(config)
        _check_chunks(generate_parser(), config)
        _say_merging(inputs)
        _say_skipped(inputs)
        _say_removed(remove_stale(config.outdir, manifest.run_name(config)))
        kept = kept_chunks(config)
        if manifest.is_complete(config, kept):
            print(f"{where}: complete: kept ({sum(s['n_accepted'] for s in kept.values())} events, {len(kept)} file(s))")
            return 0
        if kept:
            print(f"{where}: {len(kept)} of {config.n_chunks} file(s) already written with these settings: kept")
        summaries = generate(config, kept, inputs)
    except GenerationError as error:
        fail(GENERATE, str(error))
    except OSError as error:  # a full disk, a quota, a file-size limit: the cleanup has run in generate()
        fail(GENERATE, f"cannot write to {error.filename or os.path.abspath(config.outdir)}: "
             f"{error.strerror or error}; partial files removed, complete files kept (a rerun resumes)")
    except KeyboardInterrupt as interrupt:
        print(f"{GENERATE}: interrupted; complete files were kept, partial ones removed", file=sys.stderr)
        return 128 + getattr(interrupt, "signum", signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)
    new = [s for s in summaries if s["chunk"] not in kept]
    generated = sum(s["n_generated"] for s in new)
    accepted = sum(s["n_accepted"] for s in new)
    print(
        f"wrote {accepted} {config.process} events ({generated} generated, acceptance {accepted / max(generated, 1):.3f}) "
        f"in {len(new)} file(s) to {os.path.abspath(config.outdir)}; "
        + (f"chunk(s) {' '.join(map(str, config.chunks))} done" if config.chunks is not None
           else f"run complete: {manifest.manifest_path(config).name}")
    )
    _say_negative_weights(new)
    _say_skipped_in_run(new)
    return 0


def _say_merging(inputs):
    """One line per Les Houches file: the merging (and NLO shower settings) Pythia applies to it."""
    for item in inputs or ():
        if getattr(item, "merging", None) is not None and item.madgraph is not None:
            print(f"{item.path}: {item.merging.describe()}")


def _say_skipped(inputs):
    """One line per input file holding events that cannot be read (skipped; inspect_inputs refused more)."""
    for item in inputs or ():
        line = describe_skipped(item)
        if line:
            print(f"{GENERATE}: warning: {line}", file=sys.stderr)


def _say_removed(paths):
    if paths:
        print(f"{GENERATE}: removed {len(paths)} temporary file(s) that killed runs left: "
              f"{', '.join(path.name for path in paths)}", file=sys.stderr)


def _say_skipped_in_run(summaries):
    """What the written files lack: input events not reconstructed, by why (the sidecars' skipped_input_events)."""
    reasons = {}
    for summary in summaries:
        for why, n in summary.get("skipped_input_events", {}).items():
            reasons[why] = reasons.get(why, 0) + n
    if reasons:
        print(f"{GENERATE}: note: {sum(reasons.values())} input event(s) skipped: "
              + "; ".join(f"{n} {why}" for why, n in reasons.items()) + " (skipped_input_events in the sidecars)",
              file=sys.stderr)


def _say_negative_weights(summaries):
    negative = sum(s.get("n_negative_weights", 0) for s in summaries)
    if negative:
        print(f"{GENERATE}: note: {negative} of {sum(s['n_accepted'] for s in summaries)} written events carry "
              "negative weights (NLO); 'weight' keeps the sign for the yields, while weaver trains on every event "
              "alike, i.e. on |w| (docs/generation.md, negative weights)", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# truth_tag.py


def truth_tag_parser():
    parser = OneLineParser(prog=TRUTH_TAG, description=truth_tagging.__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("files", nargs="+", help="schema ROOT files (tools/generate_events.py output)")
    add("--outdir", required=True, help="where the truth-tagged files go (same names)")
    add("--mode", choices=truth_tagging.MODES, required=True,
        help="test: one copy per tag class; train: the events of all FILES unweighted together (signal and "
        "background each against one reference), one copy each")
    add("--min-tags", type=int, default=0, choices=(0, 2, 3, 4),
        help="analysis region: only the tag classes with at least this many b-tagged subjets (default: 0, all)")
    add("--mixture", choices=truth_tagging.MIXTURES, default="physical",
        help="train mode: 'physical': every file of a label against one reference of the region cross section; "
        "'samples': each sample against its own reference of its generator weights, every kept event in the region "
        "(an enriched mixture: docs/generation.md) (default: physical)")
    add("--seed", type=int, default=1, help="seed of the tag draws, combined with each file name (default: 1)")
    add_tag_efficiency_options(add)
    return parser


def truth_tag_main(argv=None):
    args = truth_tag_parser().parse_args(argv)
    efficiencies = TagEfficiencies(args.btag_eff, args.ctag_mistag, args.light_mistag)
    outdir = Path(args.outdir)
    _check_targets(args.files, outdir)
    try:
        truth_tagging.check_files(args.files, args.mode, efficiencies, args.min_tags)  # before anything is written
        outdir.mkdir(parents=True, exist_ok=True)
        unweighting = {}  # train mode: path -> (weight scale, reference), all files together
        if args.mode == "train":
            unweighting = truth_tagging.unweighting_references(args.files, efficiencies, args.min_tags, args.mixture)
        for path in args.files:
            target = outdir / Path(path).name
            scale, reference = unweighting.get(path, (1.0, None))
            n_in, n_out = truth_tagging.truth_tag_file(path, target, args.mode, efficiencies, args.seed, args.min_tags,
                                                       reference, scale, args.mixture)
            print(f"{path}: {n_in} events -> {n_out} truth-tagged ({args.mode}) in {target}"
                  + (f" (unweighted against {reference:.4g} fb per event)" if reference and n_in else ""))
            _say_negative_training_weights(path, n_in, args.mode)
    except (OSError, ValueError, KeyError) as err:
        fail(TRUTH_TAG, str(err))
    return 0


def _check_targets(files, outdir):
    """Every input gets its own output, OUTDIR/<its name>, which is not the input itself."""
    written_by = {}  # output -> input
    for path in files:
        target = outdir / Path(path).name
        if target.resolve() == Path(path).resolve():
            fail(TRUTH_TAG, f"{path}: --outdir must differ from the input's directory")
        if target in written_by:
            first = written_by[target]
            same = Path(first).resolve() == Path(path).resolve()
            fail(TRUTH_TAG, f"{path} is given twice: give each file once" if same else
                 f"{first} and {path} would both be written to {target}: give inputs of distinct names")
        written_by[target] = path


def _say_negative_training_weights(path, n_in, mode):
    """What became of negative (NLO) weights: weaver cannot train on them (truth_tagging.py)."""
    negative = truth_tagging.negative_weights(path)
    if negative:
        what = ("kept with probability |w| / w_ref: weaver trains on |w|" if mode == "train"
                else "each copy keeps its sign")
        print(f"{path}: {negative} of {n_in} events carry negative weights (NLO): {what}; 'weight' keeps the sign")
