"""Bookkeeping of the mass-scan workflow (``workflow/Snakefile``, settings in ``config/mass_scan.yaml``): the
samples and their files, which fold a file belongs to, the per-(mass, fold) data directories the trainings
read, and the parameterised model's data configs. Light imports only: Snakemake reads it to build the DAG.
"""

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..definitions import FEATURES, MODELS, STUDY_MASSES, data_config_file, preselection_options
from ..schema import HF_FILTER_SUFFIX, MAX_TAGS, PROCESS_CODES, SIGNAL_PROCESSES, file_stem, run_stem

# the truth-tagged copies the networks train on (one per kept event, its b-tag class drawn with its
# probability) and those they are tested on (one per tag class), signal and background alike, inside the
# analysis region (config min_tags): tools/truth_tag.py --mode
TRUTH_DIRS = {"train": "truth_train_physical", "test": "truth_test"}
PARAM_TEMPLATE = data_config_file("cross_param")
MASS_HYPOTHESIS_CALL = "mass_hypothesis(mH, event_id)"  # in PARAM_TEMPLATE: the hypotheses are added here


def fold_of(path, n_folds):
    """Files are named <stem>_<chunk>.root; chunk c belongs to fold c % n_folds."""
    return int(re.search(r"_(\d+)\.root$", str(path)).group(1)) % n_folds


def validation_fold(fold, n_folds):
    """The fold training ``fold`` chooses its cuts and binnings on: the next one, (fold + 1) % n_folds. It is left
    out of that training's training set and predicted by it as its test fold is."""
    return (fold + 1) % n_folds


def split_of(path, fold, n_folds):
    """Where a file goes in the data directory of ``fold``: "test" (its test copy, or a file as generated, in the
    fold), "validation" (the same, in the validation fold), "train" (its training copy, or a file as generated, in
    the other folds) or None (the other copy)."""
    held_out = {fold: "test", validation_fold(fold, n_folds): "validation"}.get(fold_of(path, n_folds))
    copies = Path(path).parent.name
    if copies == TRUTH_DIRS["train"] and held_out or copies == TRUTH_DIRS["test"] and not held_out:
        return None
    return held_out or "train"


def default_categories(min_tags):
    """The tag categories the limits combine unless told: one per tag count, from ``min_tags`` up to MAX_TAGS."""
    return list(range(min_tags, MAX_TAGS + 1))


def check_categories(categories, min_tags):
    """ValueError unless ``categories`` (lowest tag counts) cut the region of >= ``min_tags`` tags into parts:
    ascending, the first min_tags, none above MAX_TAGS."""
    if categories != sorted(set(categories)) or categories[0] != min_tags or categories[-1] > MAX_TAGS:
        raise ValueError(f"categories: {categories} do not cut the region of >= {min_tags} tags into parts: give "
                         f"ascending tag counts from min_tags up to {MAX_TAGS}, e.g. {default_categories(min_tags)}")


def parse_masses(value):
    """The ``masses`` setting as numbers, whichever way it came: a list (``--config masses=[600,1000]`` gives
    strings), one number (``masses=1000``), or numbers separated by commas (``masses=1000,2000``); None stays None
    (the default masses). Raises ValueError naming a value that is not a number."""
    return parse_numbers(value, "masses", "masses=1000, masses=[600,1000] or masses=600,1000 (GeV)")


def parse_numbers(value, key, examples):
    """A list-of-numbers setting ``key`` as numbers, however it came (see :func:`parse_masses`); ``examples``: how
    to give it, for the error."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [word for word in re.split(r"[,\s]+", value.strip("[] ")) if word]
    elif not isinstance(value, (list, tuple)):
        value = [value]
    numbers = []
    for word in value:
        try:
            number = float(word)
        except (TypeError, ValueError):
            raise ValueError(f"{key}: '{word}' is not a number; give {examples}") from None
        numbers.append(int(number) if number.is_integer() else number)
    return numbers


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
        """tools/generate_events.py's options of the whole run (a job adds --chunks C and --outdir); ``preselection``:
        {cut: value} (config preselection). ValueError for a name that is no cut."""
        mass = ["--mH", f"{self.mass:g}"] if self.process in SIGNAL_PROCESSES else []
        return ["--process", self.process, "--events", str(self.events), "--events-per-file", str(self.events_per_file),
                "--seed", str(self.seed), *mass, *preselection_options(preselection), *map(str, self.options)]


class Study:
    """The study that ``config`` (config/mass_scan.yaml, with --config overrides) defines."""

    def __init__(self, config):
        self.config = config
        # absolute: the jobs run tools that change directory (train_multiscale.sh)
        self.data, self.out = Path(config["data"]).absolute(), Path(config["out"]).absolute()
        self.masses = [float(m) for m in (parse_masses(config.get("masses")) or STUDY_MASSES)]
        self.folds = int(config["folds"])
        self.chunks = self.folds * int(config["chunks_per_fold"])
        self.features = config["features"]
        self.min_tags = int(config["min_tags"])
        # the tag categories the limits combine, by their lowest tag count (null: one per count, min_tags to 4)
        self.categories = [int(k) for k in config.get("categories") or default_categories(self.min_tags)]
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
        self._check_repeats()
        check_categories(self.categories, self.min_tags)
        self._check_heavy_flavour_halves()
        # the mass of the ROC plot; none when it is not scanned
        self.ref_mass = float(self.config["ref_mass"]) if float(self.config["ref_mass"]) in self.masses else None

    def _check_repeats(self):
        """Training r tests on fold r and validates on the next: more trainings than folds would test on folds that
        do not exist, and fewer than 3 folds leave nothing to train on (the workflow's schema refuses those first:
        this says why to the Python API)."""
        if self.folds < 3:
            raise ValueError(f"folds: {self.folds} folds leave no training events (training r tests on fold r and "
                             f"chooses its cuts on fold r + 1): give at least 3")
        asked = {"repeats": int(self.config["repeats"])}
        if float(self.config["ref_mass"]) in self.masses:
            asked["repeats_ref"] = int(self.config["repeats_ref"])
        for key, repeats in asked.items():
            if repeats > self.folds:
                raise ValueError(f"{key}: {repeats} trainings need {repeats} folds (training r tests on fold r), but "
                                 f"folds is {self.folds}: lower {key} to at most {self.folds} or raise folds")

    def _check_heavy_flavour_halves(self):
        """A process comes from its inclusive sample or from both heavy-flavour halves (--hf-filter veto and
        require), as the evaluation stitches them (multiscale.evaluation.yields): refused here, before generating."""
        modes = {}
        for sample in self.backgrounds:
            modes.setdefault(sample.process, {}).setdefault(sample.hf_filter, []).append(sample.name)
        for process, samples in modes.items():
            if set(samples) in ({None}, {"veto", "require"}):
                continue
            names = ", ".join(f"{name} ({'--hf-filter ' + mode if mode else 'inclusive'})"
                              for mode, names in samples.items() for name in names)
            if None in samples:
                why = "the inclusive sample overlaps the heavy-flavour halves: keep the inclusive one or the two halves"
            else:
                missing = ({"veto", "require"} - set(samples)).pop()
                why = f"add its other half, a sample with --hf-filter {missing} (as qcd_hf in config/mass_scan.yaml)"
            raise ValueError(f"backgrounds: process {process} has {names}: {why}")

    # --- files -------------------------------------------------------------------------------------------------

    def samples(self):
        return [*self.signals.values(), *self.backgrounds]

    def sample_of_stem(self):
        """{file stem without the chunk: sample}, for the generate rule's wildcard."""
        return {run_stem(sample.stem(0)): sample for sample in self.samples()}

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

    def split_directory(self, name, fold):
        """The data directory of ``name`` ('mH<m>', or 'all': every mass) and ``fold`` (the split rule's output)."""
        return self.data / "splits" / f"{name}_fold{fold}"

    def split_files(self, name, fold):
        """{"train": files, "test": files, "validation": files} of that data directory, in the study's sample order:
        what its trainings are handed, file by file (train_multiscale.sh --data-train / --data-test)."""
        masses = self.masses if name == "all" else [float(name[2:])]
        directory, files = self.split_directory(name, fold), {"train": [], "test": [], "validation": []}
        for path in self.split_inputs(masses):
            split = split_of(path, fold, self.folds)
            if split:
                files[split].append(directory / split / path.name)
        return files

    def evaluation_events(self):
        """The test copies of every sample: what the cut-based reference reads."""
        return self.truth_tagged("test", self.samples())

    def evaluation_arguments(self):
        """multiscale.study.mass_scan's event files, by sample: each mass's signal, the backgrounds' test copies
        (the cut-based reference and the test sets) and their training copies (what the networks saw)."""
        words = []
        for mass, sample in self.signals.items():
            words += ["--signal-events", f"{mass:g}", *map(str, self.truth_tagged("test", [sample]))]
        words += ["--background-events", *map(str, self.truth_tagged("test"))]
        words += ["--training-backgrounds", *map(str, self.truth_tagged("train"))]
        return words

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
        """Every prediction file the evaluation reads (multiscale.study.mass_scan.prediction_path), each with its
        validation fold's (validation_path)."""
        files = [self.run_dir(where, model, fold) / "pred.root" for where, model, fold in self.trainings() if where != "param"]
        if self.config["param"]:
            files += [self.run_dir("param", "cross_param", fold) / f"pred_mH{mass:g}.root"
                      for fold in range(int(self.config["repeats"])) for mass in self.masses]
        return [path for test in files for path in (test, validation_path(test))]

    def models_evaluated(self):
        return [*self.config["models"], *(["cross_param"] if self.config["param"] else [])]


def validation_path(prediction):
    """The prediction of a training's validation fold, beside that of its test fold: pred.root ->
    pred_validation.root, pred_mH1000.root -> pred_mH1000_validation.root."""
    prediction = Path(prediction)
    return prediction.with_name(f"{prediction.stem}_validation{prediction.suffix}")


# --- the jobs' helpers (run: rules; Snakemake removes a failed job's outputs: written in place) -------------------


def link_split(directory, fold, n_folds, files):
    """DIR/test: the files of fold ``fold``; DIR/validation: those of its validation fold; DIR/train: the others
    (split_of says which copy of each; as symbolic links, relative, so that the tree can move). ``files``: signal
    files and both truth-tagged copies."""
    directory = Path(directory)
    for split in ("train", "test", "validation"):
        (directory / split).mkdir(parents=True)
    for path in map(Path, files):
        split = split_of(path, fold, n_folds)
        if split is None:
            continue
        link = directory / split / path.name
        link.symlink_to(os.path.relpath(path.resolve(), link.parent.resolve()))


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
    path.write_text(text)
