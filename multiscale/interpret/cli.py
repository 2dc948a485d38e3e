"""Command lines of ``tools/attention_maps.py`` and ``tools/gradcam.py`` (see docs/interpretability.md).

Conventions as in ``multiscale/cli_common.py``: ``<tool>_parser()``, ``<tool>_main(argv=None) -> int``,
one-line errors.
"""

import argparse
import ast
import json
from pathlib import Path

import numpy as np

from multiscale.cli_common import OneLineParser, fail
from multiscale.weaver_io import CheckpointError, load_trained_model, read_checkpoint

from .attention import attention_maps, maps_to_arrays
from .data import CLASSES, load_events, signal_class_index
from .gradcam import METHODS, NORMALISATIONS, gradcam_histograms, histograms_to_arrays, particle_streams
from .plots import plot_comparison, plot_gradcam, plot_heads


def _common_parser(prog, description, example):
    parser = OneLineParser(prog=prog, description=description, epilog=example,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("-c", "--data-config", required=True, help="weaver data config (YAML) the model was trained with")
    add("-n", "--network-config", help="weaver network config file (default: the package's network, as networks/multiscale_cross.py)")
    add("-m", "--model", required=True, help="trained weights (weaver's *_state.pt)")
    add("--files", nargs="+", required=True, metavar="FILE", help="ROOT files or glob patterns (quote them)")
    add("--outdir", required=True, help="directory for the plots and the .npz (created)")
    add("--events", type=int, default=1000, help="events per class, signal and background (default %(default)s)")
    add("--layer", type=int, default=-1, help="self-attention block of each stream, python index (default %(default)s: last)")
    add("-o", "--network-option", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
        help="network option as for weaver, value a python literal: -o fusion \"'cross'\"")
    add("--custom-functions", help="weaver --custom-functions file used by the data config "
                                 "(default: the package's, as data/jet_functions.py; '' for none)")
    add("--signal-label", default="is_signal", help="label of the signal class in the data config (default %(default)s)")
    add("--batch-size", type=int, default=64, help="events per forward pass (default %(default)s)")
    add("--label", default="", help="text appended to the figure titles, e.g. 'demo model'")
    return parser


def network_options(pairs, prog):
    options = {}
    for name, value in pairs:
        try:
            options[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            fail(prog, f"network option {name}={value!r} is not a python literal (strings need quotes: \"'cross'\")")
    return options


def _setup(parser, argv):
    """Parse the command line, read the events and load the model: (args, (data_config, samples,
    model, outdir, label)); a bad input exits with one line."""
    args, prog = parser.parse_args(argv), parser.prog
    try:
        read_checkpoint(args.model)  # a wrong --model fails now, not after reading the events
    except CheckpointError as err:
        fail(prog, err)
    data_config, samples = load_events(args.data_config, args.files, args.events,
                                       custom_functions=args.custom_functions, signal_label=args.signal_label)
    for cls in CLASSES:
        print(f"{cls}: {len(samples[cls])} events")
    if not any(len(s) for s in samples.values()):
        fail(prog, "no event read from --files")
    try:
        model, _ = load_trained_model(data_config, args.model, args.network_config,
                                      **network_options(args.network_option, prog))
    except ValueError as err:  # a CheckpointError, or an option the network refuses
        fail(prog, err)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    label = f" [{args.label}]" if args.label else ""
    return args, (data_config, samples, model, outdir, label)


def attention_parser():
    parser = _common_parser(
        "attention_maps.py",
        "Self- and cross-attention maps of a trained model, averaged over signal and background events.",
        """example:
  python tools/attention_maps.py -c data/jets_kin.yaml -n networks/multiscale_cross.py \\
      -m training/cross_full_demo/net_best_epoch_state.pt --files 'datasets/hh4b/test/*.root' \\
      --outdir plots/attention --events 1000 -o fusion "'cross'" """,
    )
    parser.add_argument("--cross-layer", type=int, default=-1, help="cross-attention block (default %(default)s: last)")
    parser.add_argument("--constituents", type=int, default=20,
                        help="leading constituents shown per fat jet (default %(default)s)")
    parser.add_argument("--relative", action="store_true",
                        help="show weight x number of valid keys (1 = uniform attention): removes the 1/n "
                             "multiplicity effect when signal and background are compared")
    return parser


def attention_main(argv=None):
    args, (data_config, samples, model, outdir, label) = _setup(attention_parser(), argv)
    if args.relative:
        label = " (x valid keys)" + label

    maps_by_class = {}
    for cls, sample in samples.items():
        maps_by_class[cls] = attention_maps(model, sample.batches(args.batch_size), args.layer,
                                            args.cross_layer, args.constituents, args.relative) if len(sample) else {}
    present = [cls for cls in CLASSES if maps_by_class[cls]]
    written = []
    names = maps_by_class[present[0]].keys()
    for name in names:
        m = maps_by_class[present[0]][name]
        stem = f"{m.kind}_{m.stream}_L{m.layer}" if m.kind == "self" else f"cross_L{m.layer}"
        for cls in present:
            path = outdir / f"{stem}_{cls}_heads.png"
            plot_heads(maps_by_class[cls][name], cls, path, label)
            written.append(path)
        if len(present) == 2:
            path = outdir / f"{stem}_mean.png"
            title = None
            if m.kind == "cross":
                title = (f"cross-attention layer {m.layer}: objects ('{m.stream}') x leading {args.constituents} "
                         f"constituents per jet, mean of {m.acc.heads} heads{label}")
            plot_comparison(maps_by_class, name, path, label, title)
            written.append(path)
    arrays = maps_to_arrays({cls: maps_by_class[cls] for cls in present})
    np.savez_compressed(outdir / "attention_maps.npz", **arrays)
    written.append(outdir / "attention_maps.npz")

    summary = {}
    for cls in present:
        for name, m in maps_by_class[cls].items():
            mean = np.nanmean(m.acc.mean(), axis=0)
            summary[f"{cls} {name}: mean weight on the register key"] = round(float(np.nanmean(mean[:, 0])), 4)
            summary[f"{cls} {name}: mean weight beyond the shown ranks"] = round(float(np.nanmean(m.acc.rest_mean())), 4)
    print(json.dumps(summary, indent=1))
    print("wrote:\n  " + "\n  ".join(map(str, written)))
    return 0


def gradcam_parser():
    parser = _common_parser(
        "gradcam.py",
        "Grad-CAM of the signal logit on the last self-attention block of the jet stream, per constituent, "
        "in the aligned (eta, phi) plane; signal and background side by side.",
        """example:
  python tools/gradcam.py -c data/jets_kin.yaml -n networks/multiscale_cross.py \\
      -m training/cross_full_demo/net_best_epoch_state.pt --files 'datasets/hh4b/test/*.root' \\
      --outdir plots/gradcam --events 1000 -o fusion "'cross'" """,
    )
    parser.add_argument("--method", choices=METHODS, default="gradcam",
                        help="gradcam: token-averaged channel weights (default); hirescam: per-token gradients")
    parser.add_argument("--normalise", choices=NORMALISATIONS, default="max",
                        help="per-event scaling of the constituent values (default %(default)s: maximum 1)")
    parser.add_argument("--bins", type=int, default=32, help="bins per axis (default %(default)s)")
    parser.add_argument("--log", action="store_true", help="logarithmic colour scale (shows the soft radiation)")
    parser.add_argument("--extent", type=float, default=0.8, help="histogram range +-EXTENT in eta' and phi' (default %(default)s)")
    parser.add_argument("--coordinates", nargs=2, metavar=("ETA", "PHI"),
                        help="the constituents' (eta, phi) variables in <stream>_features (default: <stream>_eta "
                             "<stream>_phi, else ParT's part_deta part_dphi)")
    return parser


def gradcam_main(argv=None):
    parser = gradcam_parser()
    args, (data_config, samples, model, outdir, label) = _setup(parser, argv)
    target = signal_class_index(data_config, args.signal_label)

    hists, summaries = {}, {}
    for cls, sample in samples.items():
        if len(sample):
            try:
                hists[cls], summaries[cls] = gradcam_histograms(
                    model, data_config, sample.batches(args.batch_size), target, args.layer, args.method,
                    args.bins, args.extent, args.normalise, args.coordinates)
            except ValueError as err:
                fail(parser.prog, err)
    streams = particle_streams(model)
    layer = args.layer % len(model.stream_blocks(streams[0]))
    note = f" of stream{'s' if len(streams) > 1 else ''} {', '.join(streams)}"
    jets = sorted(next(iter(hists.values())).keys())
    written = [outdir / "gradcam.png"]
    plot_gradcam(hists, [tuple(jets)], written[0], label, args.method, layer, note, args.log)
    if len(jets) > 1:
        written.append(outdir / "gradcam_jets.png")
        plot_gradcam(hists, jets, written[-1], label, args.method, layer, note, args.log)
    arrays = histograms_to_arrays(hists, summaries)
    arrays.update(method=np.array(args.method), normalise=np.array(args.normalise), layer=np.array(layer))
    np.savez_compressed(outdir / "gradcam.npz", **arrays)
    written.append(outdir / "gradcam.npz")
    print(json.dumps(summaries, indent=1))
    print("wrote:\n  " + "\n  ".join(map(str, written)))
    return 0
