"""Bookkeeping of the mass-scan workflow (``workflow/Snakefile``, settings in ``config/mass_scan.yaml``): the
samples and their files, which fold a file belongs to, the per-(mass, fold) data directories the trainings
read, and the parameterised model's data configs. Light imports only: Snakemake reads it to build the DAG.

    python -m multiscale.study.workflow steps-per-epoch --batch 128 FILES...   # one pass over 80% of the events
"""

import argparse
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..definitions import FEATURES, MODELS, REPO_ROOT, STUDY_MASSES
from ..schema import HF_FILTER_SUFFIX, PROCESS_CODES, SIGNAL_PROCESSES, file_stem

# the truth-tagged copies the networks train on (one per kept event, its b-tag class drawn with its
# probability) and those they are tested on (one per tag class), signal and background alike, inside the
# analysis region (config min_tags): tools/truth_tag.py --mode
TRUTH_DIRS = {"train": "truth_train_physical", "test": "truth_test"}
PARAM_TEMPLATE = REPO_ROOT / MODELS["cross_param"].data_config
MASS_HYPOTHESIS_CALL = "mass_hypothesis(mH, event_id)"  # in PARAM_TEMPLATE: the hypotheses are added here


def fold_of(path, n_folds):
    """Files are named <stem>_<chunk>.root; chunk c belongs to fold c % n_folds."""
    return int(re.search(r"_(\d+)\.root$", str(path)).group(1)) % n_folds


@dataclass(frozen=True)
class Sample:
    """One generator run of the study: ``events`` accepted events cut into ``chunks`` files."""

    name: str
    process: str
    events: int
    seed: int
    chunks: int
    options: tuple = ()
    mass: float = 0.0  # the signal's m_H (GeV)

    @property
    def events_per_file(self):
        return math.ceil(self.events / self.chunks)

    @property
    def hf_filter(self):
        """The sample's --hf-filter mode (None: inclusive)."""
        options = list(map(str, self.options))
        return options[options.index("--hf-filter") + 1] if "--hf-filter" in options else None

    def stem(self, chunk):
        return file_stem(self.process, self.mass, self.seed, chunk, HF_FILTER_SUFFIX.get(self.hf_filter, ""))

    def generator_arguments(self, preselection):
        """tools/generate_events.py's options of the whole run (a job adds --chunks C and --outdir)."""
        mass = ["--mH", f"{self.mass:g}"] if self.process in SIGNAL_PROCESSES else []
        return ["--process", self.process, "--events", str(self.events), "--events-per-file", str(self.events_per_file),
                "--seed", str(self.seed), *mass, *map(str, preselection), *map(str, self.options)]


class Study:
    """The study that ``config`` (config/mass_scan.yaml, with --config overrides) defines."""

    def __init__(self, config):
        self.config = config
        # absolute: the jobs run tools that change directory (train_multiscale.sh)
        self.data, self.out = Path(config["data"]).absolute(), Path(config["out"]).absolute()
        self.masses = [float(m) for m in (config.get("masses") or STUDY_MASSES)]
        self.folds = int(config["folds"])
        self.chunks = self.folds * int(config["chunks_per_fold"])
        self.features = config["features"]
        self.min_tags = int(config["min_tags"])
        scale = config["scale"]
        signal = config["signal"]
        self.signals = {mass: Sample(f"hh4b_mH{mass:g}", signal["process"], int(signal["events"] * scale),
                                     int(signal["seed"] + mass), self.chunks, tuple(signal.get("options", ())), mass)
                        for mass in self.masses}
        self.backgrounds = [Sample(name, sample["process"], int(sample["events"] * scale), int(sample["seed"]), self.chunks,
                                   tuple(sample.get("options", ()))) for name, sample in config["backgrounds"].items()]
        self._check()

    def _check(self):
        unknown = [model for model in self.config["models"] if model not in MODELS or MODELS[model].mass_hypothesis]
        if unknown:
            raise ValueError(f"models: unknown {unknown}; choose from {[m for m in MODELS if not MODELS[m].mass_hypothesis]} "
                             f"(the parameterised model: param: true)")
        if self.features not in FEATURES:
            raise ValueError(f"features: unknown '{self.features}'; choose one of {list(FEATURES)}")
        processes = {sample.process for sample in self.samples()} - set(PROCESS_CODES)
        if processes:
            raise ValueError(f"unknown process(es) {sorted(processes)}; choose from {list(PROCESS_CODES)}")
        for sample in self.samples():
            if sample.events < self.chunks or math.ceil(sample.events / sample.events_per_file) != self.chunks:
                raise ValueError(f"sample {sample.name}: {sample.events} events cannot be cut into {self.chunks} files "
                                 f"(folds x chunks_per_fold); raise its events or the scale")
        stems = [sample.stem(0) for sample in self.backgrounds]
        if len(set(stems)) != len(stems):
            raise ValueError(f"two background samples would write the same files ({stems}): give each its own seed")
        # the mass of the ROC plot; none when it is not scanned
        self.ref_mass = float(self.config["ref_mass"]) if float(self.config["ref_mass"]) in self.masses else None

    # --- files -------------------------------------------------------------------------------------------------

    def samples(self):
        return [*self.signals.values(), *self.backgrounds]

    def sample_of_stem(self):
        """{file stem without the chunk: sample}, for the generate rule's wildcard."""
        return {sample.stem(0).rsplit("_", 1)[0]: sample for sample in self.samples()}

    def generated(self, sample):
        return [self.data / "generated" / f"{sample.stem(chunk)}.root" for chunk in range(self.chunks)]

    def truth_tagged(self, mode, samples=None):
        """The truth-tagged copies (``mode`` train or test) of ``samples`` (default: the backgrounds)."""
        samples = self.backgrounds if samples is None else samples
        return [self.data / TRUTH_DIRS[mode] / path.name for sample in samples for path in self.generated(sample)]

    def split_inputs(self, masses):
        """The files a (mass, fold) data directory links: both copies of the signal of ``masses`` and of the
        backgrounds."""
        signals = [self.signals[mass] for mass in masses]
        return [*self.truth_tagged("train", signals), *self.truth_tagged("test", signals),
                *self.truth_tagged("train"), *self.truth_tagged("test")]

    def evaluation_events(self):
        """The test copies of every sample: what the cut-based reference reads."""
        return self.truth_tagged("test", self.samples())

    # --- trainings ---------------------------------------------------------------------------------------------

    def repeats_at(self, mass):
        return int(self.config["repeats_ref"] if mass == float(self.config["ref_mass"]) else self.config["repeats"])

    def trainings(self):
        """(directory under out, model, fold) of every training: per mass, then the parameterised model."""
        runs = [(f"mH{mass:g}", model, fold) for mass in self.masses for fold in range(self.repeats_at(mass))
                for model in self.config["models"]]
        if self.config["param"]:
            runs += [("param", "cross_param", fold) for fold in range(int(self.config["repeats"]))]
        return runs

    def run_dir(self, where, model, fold):
        return self.out / where / f"{model}_{self.features}_fold{fold}"

    def predictions(self):
        """Every prediction file the evaluation reads (multiscale.study.mass_scan.prediction_path)."""
        files = [self.run_dir(where, model, fold) / "pred.root" for where, model, fold in self.trainings() if where != "param"]
        if self.config["param"]:
            files += [self.run_dir("param", "cross_param", fold) / f"pred_mH{mass:g}.root"
                      for fold in range(int(self.config["repeats"])) for mass in self.masses]
        return files

    def models_evaluated(self):
        return [*self.config["models"], *(["cross_param"] if self.config["param"] else [])]


# --- the jobs' helpers ------------------------------------------------------------------------------------------


def link_split(directory, fold, n_folds, files):
    """DIR/test: the files of fold ``fold``; DIR/train: the others, except the test copies of the background (as
    symbolic links, relative, so that the tree can move). ``files``: signal files and both truth-tagged copies."""
    directory = Path(directory)
    tmp = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for split in ("train", "test"):
        (tmp / split).mkdir(parents=True)
    for path in map(Path, files):
        in_fold = fold_of(path, n_folds) == fold
        copies = path.parent.name
        if copies == TRUTH_DIRS["train"] and in_fold or copies == TRUTH_DIRS["test"] and not in_fold:
            continue
        link = tmp / ("test" if in_fold else "train") / path.name
        link.symlink_to(os.path.relpath(path.resolve(), directory.resolve() / link.parent.name))
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)


def write_param_config(masses, path):
    """The parameterised model's data config with the background's hypotheses drawn from ``masses`` (training),
    or fixed to one mass (evaluation at that hypothesis)."""
    text = PARAM_TEMPLATE.read_text()
    if text.count(MASS_HYPOTHESIS_CALL) != 1:
        raise ValueError(f"{PARAM_TEMPLATE}: expected '{MASS_HYPOTHESIS_CALL}' once, where the masses are added")
    hypotheses = ", ".join(f"{mass:g}" for mass in masses)
    text = text.replace(MASS_HYPOTHESIS_CALL, f"mass_hypothesis(mH, event_id, [{hypotheses}])")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def steps_per_epoch(files, batch):
    """One pass over the training part of ``files`` (weaver keeps 80% for training) per epoch."""
    import uproot

    from ..schema import TREE_NAME

    events = sum(uproot.open(path)[TREE_NAME].num_entries for path in files)
    return max(1, events * 8 // 10 // batch)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m multiscale.study.workflow", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    steps = commands.add_parser("steps-per-epoch", help="weaver's --steps-per-epoch for one pass over the events")
    steps.add_argument("--batch", type=int, required=True)
    steps.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    print(steps_per_epoch(args.files, args.batch))


if __name__ == "__main__":
    main()
