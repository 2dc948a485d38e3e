"""Check before training that every input file can be read and holds what a data config needs.

weaver reads branches with uproot's ``filter_name``, which silently skips a missing one, and skips
a file it cannot read (truncated, an RNTuple instead of a TTree) with only a log line. This reads
every needed branch of every file up front and names the file, the branch and the data config:

    python -m multiscale.check_inputs data/jets_kin.yaml 'datasets/hh4b/train/*.root'

The console script ``multiscale-check-inputs`` is the same command.

Errors (one line each, exit 1): no TTree, an RNTuple, a missing branch, a branch whose baskets
cannot be read. Warnings (exit 0): non-finite values in a branch; two files holding the same
generated events (same process, ``gen_seed`` and ``event_id`` set), e.g. train and test from one seed;
two files showered from the same events of one input file (their generator sidecars' ``source``: the
input's content hash and event range), e.g. one LHE file given to two runs.
"""

import glob
import hashlib
import json
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from multiscale.cli_common import OneLineParser
from multiscale.schema import TREE_NAME
from multiscale.weaver_io import load_data_config

# the branches that identify the generated events of a file (see generation/chunk.py)
IDENTITY_BRANCHES = ("process", "gen_seed", "event_id")


class InputError(Exception):
    """One line per problem, each naming its file."""


def needed_branches(data_config) -> set[str]:
    """Branches weaver will read from the files: inputs, labels, observers, and whatever the
    ``new_variables`` expressions use, minus what those expressions compute."""
    needed = set(data_config.train_load_branches) | set(data_config.test_load_branches)
    return needed - set(data_config.var_funcs)


def strip_label(pattern: str) -> str:
    """weaver takes 'label:pattern' (and 'label%N:pattern'); keep the pattern."""
    label, sep, rest = pattern.partition(":")
    return rest if sep and "/" not in label else pattern


def expand(patterns) -> list[str]:
    files = []
    for pattern in map(strip_label, patterns):
        matched = sorted(glob.glob(pattern))
        if not matched:
            raise InputError(f"no file matches '{pattern}'")
        files += matched
    return files


def _one_line(err):
    return " ".join(str(err).split()) or type(err).__name__


def _warn_stderr(message):
    print(f"warning: {message}", file=sys.stderr)


def _open_tree(f, path, treename):
    if treename not in f:
        raise InputError(f"{path}: no TTree '{treename}' (found: {', '.join(f.keys()) or 'nothing'})")
    classname = f.classname_of(treename)
    if "RNTuple" in classname:
        raise InputError(f"{path}: '{treename}' is an RNTuple; weaver reads only TTrees: write it with mktree+extend")
    if classname != "TTree":
        raise InputError(f"{path}: '{treename}' is a {classname}, not a TTree")
    return f[treename]


def count_non_finite(values) -> int:
    """NaN and inf entries of a (possibly jagged) numeric array; 0 for integers and booleans."""
    flat = ak.to_numpy(ak.flatten(values, axis=None)) if isinstance(values, ak.Array) else np.asarray(values)
    return int(np.count_nonzero(~np.isfinite(flat))) if flat.dtype.kind in "fc" else 0


def _read_branches(tree, path, names, warn):
    """Read every basket of ``names`` (what weaver will read): a truncated file fails here."""
    for name in sorted(names):
        try:
            values = tree[name].array(library="ak")
        except Exception as err:  # a basket past the end of a truncated file, corrupt compression
            raise InputError(f"{path}: branch {name} cannot be read (truncated or corrupt file?): {_one_line(err)}") from err
        bad = count_non_finite(values)
        if bad:
            warn(f"{path}: branch {name} holds {bad} non-finite value(s) (NaN/inf)")
        if name == "weight" and np.any(np.asarray(values) < 0):  # NLO samples: weaver cannot weigh events
            warn(f"{path}: {int(np.sum(np.asarray(values) < 0))} of {len(values)} events carry a negative weight "
                 "(NLO): weaver trains on every event alike, i.e. on |w|; the evaluation keeps the sign")


def _identity(tree):
    """(process codes, gen_seeds, n events, digest of the sorted event_ids and the phase spaces), None without
    those branches. The heavy-flavour filtered and vetoed runs of one seed share event ids, not events."""
    if not set(IDENTITY_BRANCHES) <= set(tree.keys()):
        return None
    arrays = tree.arrays(list(IDENTITY_BRANCHES), library="np")
    event_ids = np.sort(arrays["event_id"].astype(np.int64))
    phase_spaces = np.unique(tree["phase_space"].array(library="np")) if "phase_space" in tree.keys() else []
    digest = hashlib.sha1(event_ids.tobytes() + repr(list(phase_spaces)).encode()).hexdigest()
    processes, seeds = (tuple(np.unique(arrays[name]).tolist()) for name in ("process", "gen_seed"))
    return processes, seeds, len(event_ids), digest


def check_file(path, needed, data_config_path, treename=TREE_NAME, warn=_warn_stderr):
    """Raise InputError (one line naming ``path``) unless the file can feed weaver; returns its identity."""
    try:
        with uproot.open(path) as f:
            tree = _open_tree(f, path, treename)
            missing = sorted(needed - set(tree.keys()))
            if missing:
                raise InputError(
                    f"{path}: branch{'es' if len(missing) > 1 else ''} {', '.join(missing)} needed by "
                    f"{data_config_path} {'are' if len(missing) > 1 else 'is'} not in tree '{treename}'"
                )
            _read_branches(tree, path, needed, warn)
            return _identity(tree)
    except InputError:
        raise
    except Exception as err:  # unreadable header or directory, not ROOT
        raise InputError(f"{path}: cannot be read as a ROOT file ({_one_line(err)})") from err


def warn_duplicates(identities, warn=_warn_stderr):
    """Warn for every group of files holding the same generated events."""
    groups = {}
    for path, identity in identities.items():
        if identity is not None and identity[2] > 0:  # files without events (none in the tag region) share nothing
            groups.setdefault(identity, []).append(path)
    for (process, seeds, n_events, _), paths in groups.items():
        if len(paths) > 1:
            warn(f"{' and '.join(paths)} hold the same generated events (process {'/'.join(map(str, process))}, "
                 f"gen_seed {'/'.join(map(str, seeds))}, {n_events} event_ids): one sample used twice, "
                 f"e.g. train and test generated with one seed?")


def input_events(path):
    """(input file's sha256, first event, end event) a file was made from, read from the generator's sidecar
    next to it; None without one (Pythia's own events, a file written by another tool)."""
    try:
        source = json.loads(Path(path).with_suffix(".json").read_text()).get("source") or {}
    except (OSError, ValueError, AttributeError):
        return None
    if not source.get("sha256"):
        return None
    start, stop = source.get("event_range") or (0, source.get("n_events", 0))
    return source["sha256"], int(start), int(stop)


def warn_shared_inputs(paths, warn=_warn_stderr):
    """Warn for every two files made from overlapping events of one input file (same content hash)."""
    by_input = {}
    for path in paths:
        made_from = input_events(path)
        if made_from is not None:
            by_input.setdefault(made_from[0], []).append((made_from[1], made_from[2], path))
    for digest, ranges in by_input.items():
        ranges.sort()
        for (start_a, stop_a, path_a), (start_b, stop_b, path_b) in zip(ranges, ranges[1:]):
            if start_b < stop_a:
                warn(f"{path_a} and {path_b} were showered from the same events {start_b}-{min(stop_a, stop_b) - 1} of "
                     f"one input file (sha256 {digest[:16]}..., their sidecars' source): the same hard events twice")


def check_files(data_config_path, patterns, custom_functions=None, treename=TREE_NAME,
                warn=_warn_stderr):
    """Check every file; raise InputError with one line per bad file, ``warn`` for suspicious ones."""
    data_config = load_data_config(data_config_path, custom_functions=custom_functions)
    needed = needed_branches(data_config)
    files = expand(patterns)
    errors, identities = [], {}
    for path in dict.fromkeys(files):  # a file matched by two patterns is read once
        try:
            identities[path] = check_file(path, needed, data_config_path, treename, warn)
        except InputError as err:
            errors.append(str(err))
    if errors:
        raise InputError("\n".join(errors))
    warn_duplicates(identities, warn)
    warn_shared_inputs(list(identities), warn)
    return files


def build_parser():
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_config", help="weaver data config (YAML)")
    parser.add_argument("files", nargs="+", help="files or glob patterns, optionally 'name:pattern' as weaver takes them")
    parser.add_argument("--custom-functions", help="weaver --custom-functions file (default: the package's, as data/jet_functions.py; '' for none)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        files = check_files(args.data_config, args.files, args.custom_functions)
    except (InputError, FileNotFoundError) as err:
        # one line per bad file, so that every broken file is named at once
        sys.exit("\n".join(f"{parser.prog}: error: {line}" for line in str(err).splitlines()))
    print(f"{len(files)} file(s) hold every branch {args.data_config} needs, all readable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
