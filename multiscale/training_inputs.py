"""Check the files of a training before weaver runs (``train_multiscale.sh``): every file readable with every branch
the data config needs (``multiscale.check_inputs``), and every class of the data config's labels present among the
training events. weaver trains a one-class sample without a word (sklearn's "single label" warning at most), e.g.
when a background file is handed over as the signal.

    python -m multiscale.training_inputs DATA_CONFIG --train FILES... --test FILES...
"""

import sys

import numpy as np
import uproot

from multiscale.check_inputs import InputError, check_files, expand
from multiscale.cli_common import OneLineParser
from multiscale.schema import TREE_NAME
from multiscale.weaver_io import load_data_config

SHOWN_FILES = 4  # a message names this many files, then counts the others


def label_branches(data_config):
    """The labels' branches read from the files (``simple`` labels that no new variable computes)."""
    if data_config.label_type != "simple":
        return []
    return [name for name in data_config.label_value if name not in data_config.var_funcs]


def name_files(files):
    shown = ", ".join(files[:SHOWN_FILES])
    return shown + (f" and {len(files) - SHOWN_FILES} more" if len(files) > SHOWN_FILES else "")


def check_classes(data_config_path, patterns):
    """Raise InputError (one line) when a class of the labels has no event in the files ``patterns``."""
    data_config = load_data_config(data_config_path)
    labels = label_branches(data_config)
    if not labels:
        return
    files = expand(patterns)
    counts = dict.fromkeys(labels, 0)
    for path in files:
        with uproot.open(path) as f:
            arrays = f[TREE_NAME].arrays(labels, library="np")
        for name in labels:
            counts[name] += int(np.count_nonzero(arrays[name]))
    empty = [name for name, count in counts.items() if count == 0]
    if empty:
        raise InputError(f"no {' or '.join(empty)} event in the {len(files)} training file(s) ({name_files(files)}): "
                         f"{data_config_path} trains {' against '.join(labels)}, each needs events; a background file "
                         f"handed over as the signal? (hand the files with --data-train)")


def build_parser():
    parser = OneLineParser(prog="train_multiscale.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("data_config", help="weaver data config (YAML)")
    parser.add_argument("--train", nargs="+", required=True, help="the training files (or 'name:pattern')")
    parser.add_argument("--test", nargs="*", default=[], help="the test files")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        files = check_files(args.data_config, [*args.train, *args.test])
        check_classes(args.data_config, args.train)
    except (InputError, FileNotFoundError) as err:
        sys.exit("\n".join(f"{parser.prog}: error: {line}" for line in str(err).splitlines()))
    print(f"{len(files)} file(s) hold every branch {args.data_config} needs, all readable; every class has "
          f"training events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
