"""The weaver options of ``train_multiscale.sh``: its defaults, the data files it hands weaver, and the checks of the
options it is given. The script evals what this prints (bash arrays, quoted):

    python -m multiscale.driver_options train --datadir DIR -- [weaver options]    # train test args options resume
    python -m multiscale.driver_options predict --datadir DIR -- [weaver options]  # test args options
    python -m multiscale.driver_options study-recipe CONFIG                        # the study's recipe, weaver options

Errors: one line ``train_multiscale.sh: ...`` on stderr, exit 1.
"""

import argparse
import shlex
import sys
from pathlib import Path

PROG = "train_multiscale.sh"

# The driver's recipe where the command line names none: particle_transformer's (train_JetClass.sh: Ranger at 1e-3)
# for long trainings streamed from many files. The study and the demo train differently on purpose, with the recipe
# their results were measured with: 4 short epochs over events held in memory, AdamW at 2e-3 (config/mass_scan.yaml).
BATCH_SIZE = "256"
NUM_WORKERS = "1"
TRAIN_DEFAULTS = ("--num-epochs", "20", "--batch-size", BATCH_SIZE, "--start-lr", "1e-3", "--optimizer", "ranger",
                  "--num-workers", NUM_WORKERS)
PREDICT_DEFAULTS = ("--batch-size", BATCH_SIZE, "--num-workers", NUM_WORKERS)
# weaver's --train-val-split default: the part of the training files it trains on, the rest validates
TRAIN_VAL_SPLIT = 0.8
# streaming: a fifth of every file per fetch, all files every epoch (weaver's default, 0.01, reads 1% at a time)
STREAMING_FETCH_STEP = "0.2"
# the study's settings that are weaver's training options (config/mass_scan.yaml key -> option)
STUDY_RECIPE_KEYS = {"epochs": "--num-epochs", "batch": "--batch-size", "workers": "--num-workers",
                     "optimizer": "--optimizer", "start_lr": "--start-lr"}


class DriverError(Exception):
    """A wrong command line or missing data: one line for the user."""


def split_data_files(args):
    """weaver options -> (the --data-train files, the --data-test files, the other options in order)."""
    files = {"train": [], "test": []}
    rest, into = [], None
    for arg in args:
        name, equals, value = arg.partition("=")
        if name in ("--data-train", "--data-test"):
            into = name.removeprefix("--data-")
            if equals:
                files[into].append(value)
                into = None
            continue
        if arg.startswith("-"):
            into = None
        (files[into] if into else rest).append(arg)
    return files["train"], files["test"], rest


def last_value(args, option):
    """The value of the last ``option VALUE`` or ``option=VALUE`` among ``args``; None when absent."""
    value = None
    for arg, following in zip(args, [*args[1:], None]):
        if arg == option:
            value = following
        elif arg.startswith(option + "="):
            value = arg.partition("=")[2]
    return value


def in_memory(args):
    """weaver's --in-memory / --no-in-memory: the last one given wins."""
    flags = [arg for arg in args if arg in ("--in-memory", "--no-in-memory")]
    return bool(flags) and flags[-1] == "--in-memory"


def fetch_options(args):
    """How much of the data weaver loads at a time. --in-memory loads the data once and trains on it for good: only
    --fetch-step 1 loads every event (weaver's default would train on 1% of them)."""
    if not in_memory(args):
        return ["--fetch-step", STREAMING_FETCH_STEP]
    step = last_value(args, "--fetch-step")
    if step is not None and step not in ("1", "1.0"):
        raise DriverError(f"--in-memory with --fetch-step {step} would train on only that fraction of the events, "
                          f"loaded once: drop --fetch-step (the driver passes 1)")
    return ["--fetch-step", "1"]


def count_events(files):
    """Entries of the events tree in ``files`` (weaver's patterns and 'name:pattern' allowed); None when a file cannot
    be read: the inputs check that follows names it."""
    import uproot

    from multiscale.check_inputs import expand
    from multiscale.schema import TREE_NAME

    try:
        return sum(uproot.open(path)[TREE_NAME].num_entries for path in expand(files))
    except Exception:  # noqa: BLE001 -- any unreadable file: multiscale.training_inputs reports it, one line
        return None


def steps_options(args, train_files):
    """weaver refuses --in-memory without --steps-per-epoch: one pass over the events it trains on per epoch."""
    if not in_memory(args) or last_value(args, "--steps-per-epoch") is not None:
        return []
    events = count_events(train_files)
    if events is None:
        return []
    batch = int(last_value(args, "--batch-size") or BATCH_SIZE)
    split = float(last_value(args, "--train-val-split") or TRAIN_VAL_SPLIT)
    return ["--steps-per-epoch", str(max(1, int(events * split) // batch))]


def directory_files(datadir, split):
    """Every .root file of DATADIR/SPLIT, named on stderr: nothing left out unseen."""
    directory = Path(datadir) / split
    files = sorted(str(path) for path in directory.glob("*.root"))
    if not files:
        raise DriverError(f"no {split} data in {directory}: run './train_multiscale.sh demo', generate files with "
                          f"tools/generate_events.py (see README), set DATADIR_hh4b, or give --data-{split} FILE...")
    names = " ".join(Path(path).name for path in files)
    print(f"{PROG}: {split} files: every file of {directory} ({len(files)}: {names})", file=sys.stderr)
    return files


def train_plan(datadir, args):
    """The training's files (given, else every file of the data directory) and weaver options: the driver's
    defaults, then the user's options (weaver keeps the last of an option)."""
    train, test, rest = split_data_files(args)
    train = train or directory_files(datadir, "train")
    test = test or directory_files(datadir, "test")
    options = [*TRAIN_DEFAULTS, *fetch_options(rest), *steps_options(rest, train)]
    return {"train": train, "test": test, "args": rest, "options": options,
            "resume": last_value(rest, "--load-epoch") or ""}


def predict_plan(datadir, args):
    _, test, rest = split_data_files(args)
    return {"test": test or directory_files(datadir, "test"), "args": rest, "options": list(PREDICT_DEFAULTS)}


def study_recipe(config):
    """The study's training recipe (a config/mass_scan.yaml, or Snakemake's config with its overrides) as weaver
    options; every event in memory."""
    words = [word for key, option in STUDY_RECIPE_KEYS.items() for word in (option, format_number(config[key]))]
    return [*words, "--in-memory"]


def format_number(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def load_study_config(path):
    import yaml

    with open(path) as f:
        return yaml.safe_load(f)


def bash_assignments(plan):
    """name=(quoted words) per list, name=quoted for a string: for bash's eval."""
    lines = []
    for name, value in plan.items():
        words = " ".join(map(shlex.quote, value)) if isinstance(value, list) else None
        lines.append(f"{name}=({words})" if words is not None else f"{name}={shlex.quote(value)}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m multiscale.driver_options", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for command in ("train", "predict"):
        sub = commands.add_parser(command)
        sub.add_argument("--datadir", required=True, help="DATADIR_hh4b: its train/ and test/ when no files are given")
        sub.add_argument("weaver_args", nargs=argparse.REMAINDER, help="-- then weaver's options")
    recipe = commands.add_parser("study-recipe", help="the study's recipe as weaver options, on one line")
    recipe.add_argument("config", help="the study's settings, e.g. config/mass_scan.yaml")
    args = parser.parse_args(argv)
    if args.command == "study-recipe":
        print(" ".join(map(shlex.quote, study_recipe(load_study_config(args.config)))))
        return 0
    weaver_args = args.weaver_args[1:] if args.weaver_args[:1] == ["--"] else args.weaver_args
    try:
        plan = (train_plan if args.command == "train" else predict_plan)(args.datadir, weaver_args)
    except DriverError as error:
        sys.exit(f"{PROG}: {error}")
    print(bash_assignments(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
