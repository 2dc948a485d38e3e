"""Check before training that every branch a data config needs is in every input file.

weaver reads branches with uproot's ``filter_name``, which silently skips a missing one; the
failure then surfaces later as a KeyError far from its cause. This names the branch, the file
and the data config up front:

    python -m multiscale.check_inputs data/jets_kin.yaml 'datasets/hh4b/train/*.root'
"""

import argparse
import glob
import sys

import uproot

from multiscale.schema import TREE_NAME
from multiscale.weaver_io import DEFAULT_CUSTOM_FUNCTIONS, load_data_config


class InputError(Exception):
    pass


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


def check_files(data_config_path, patterns, custom_functions=DEFAULT_CUSTOM_FUNCTIONS, treename=TREE_NAME):
    data_config = load_data_config(data_config_path, custom_functions=custom_functions)
    needed = needed_branches(data_config)
    files = expand(patterns)
    for path in files:
        try:
            with uproot.open(path) as f:
                if treename not in f:
                    raise InputError(f"{path}: no TTree '{treename}' (found: {', '.join(f.keys()) or 'nothing'})")
                present = set(f[treename].keys())
        except InputError:
            raise
        except Exception as err:  # unreadable, truncated, not ROOT
            raise InputError(f"{path}: cannot be read as a ROOT file ({err})") from err
        missing = sorted(needed - present)
        if missing:
            raise InputError(
                f"{path}: branch{'es' if len(missing) > 1 else ''} {', '.join(missing)} needed by "
                f"{data_config_path} {'are' if len(missing) > 1 else 'is'} not in tree '{treename}'"
            )
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_config")
    parser.add_argument("files", nargs="+", help="files or glob patterns, optionally 'name:pattern' as weaver takes them")
    parser.add_argument("--custom-functions", default=str(DEFAULT_CUSTOM_FUNCTIONS))
    args = parser.parse_args(argv)
    try:
        files = check_files(args.data_config, args.files, args.custom_functions)
    except (InputError, FileNotFoundError) as err:
        sys.exit(f"error: {err}")
    print(f"{len(files)} file(s) hold every branch {args.data_config} needs")


if __name__ == "__main__":
    main()
