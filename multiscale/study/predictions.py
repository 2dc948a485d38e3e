"""The mass scan's files: where the workflow writes each training's predictions, which of them are there (or
handed over), the event files of each sample and fold, and reading both in the analysis region.

Layout (written by the workflow): ``OUT/mH<m>/<model>_<features>_fold<f>/pred.root``,
``OUT/param/cross_param_<features>_fold<f>/pred_mH<m>.root``, each with its validation fold's prediction beside it
(workflow.validation_path); event files named ``<stem>_<chunk>.root``, chunk c in fold c % folds.
"""

from pathlib import Path

import numpy as np

from ..evaluation.io import Prediction, read_event_files, read_prediction
from ..evaluation.yields import phase_space_of, restrict, sample_name, tag_count, yield_weights
from .workflow import fold_of, validation_path

PARAMETERISED = "cross_param"
# branches the cut-based selection and the yields need, read from the event files themselves
EVENT_BRANCHES = ("is_signal", "process", "phase_space", "gen_seed", "weight", "xsec_fb", "acceptance", "event_id",
                  "btag_weight_up", "btag_weight_down", *(
    f"{jet}_{field}" for jet in ("fj1", "fj2") for field in ("pt", "eta", "phi", "mass", "sdmass", "nbtag")))


# --- the predictions ---------------------------------------------------------------------------------------------


def prediction_path(out, model, mass, fold, features):
    if model == PARAMETERISED:
        return Path(out) / "param" / f"{model}_{features}_fold{fold}" / f"pred_mH{mass:g}.root"
    return Path(out) / f"mH{mass:g}" / f"{model}_{features}_fold{fold}" / "pred.root"


def find_predictions(out, models, masses, features, given=None):
    """{model: {mass: {fold: path}}} of the prediction files present with their validation fold's
    (workflow.validation_path: where the choices are made); a test prediction without one is left out, named.
    ``given``: the files handed over (test and validation predictions, as the workflow declares them), instead of
    those found under ``out``; one that is no model's prediction at these masses is an error naming it."""
    present = Path.is_file if given is None else set(map(Path, given)).__contains__
    found, used = {}, set()
    for model in models:
        for mass in masses:
            for fold in range(100):
                path = prediction_path(out, model, mass, fold, features)
                if present(path) and present(validation_path(path)):
                    found.setdefault(model, {}).setdefault(mass, {})[fold] = path
                    used |= {path, validation_path(path)}
                elif present(path):
                    print(f"mass_scan: left out {path}: no prediction of its validation fold ({validation_path(path).name})")
    unknown = sorted(set(map(Path, given or ())) - used)
    if unknown:
        raise SystemExit(f"mass_scan: error: {unknown[0]} is not a prediction of the models {' '.join(models)} at the "
                         f"masses given under {out} (with its validation fold's)")
    return found


def in_tag_region(prediction, min_tags):
    """The copies with >= ``min_tags`` b-tagged subjets, with their yields (0: all)."""
    if not min_tags:
        return prediction
    tags = tag_count(prediction.arrays)
    return restrict(prediction, tags >= min_tags)


def read_test_sample(paths, min_tags):
    """The copies in the tag region of one test prediction, or of several (a list: the out-of-fold predictions of
    one model, concatenated before the region's yields are taken, so each sample keeps its cross section)."""
    if isinstance(paths, (list, tuple)):
        return in_tag_region(Prediction.concatenate([read_prediction(p) for p in paths]), min_tags)
    return in_tag_region(read_prediction(paths), min_tags)


def pooled_test_samples(jobs, masses):
    """Per mass, {model: its test predictions over the folds every model was tested on}: the out-of-fold
    predictions, one large test sample common to the taggers, each event scored by the training that did not see
    it (the training of its own fold). None for a mass with fewer than two such folds. ``jobs``: (model, mass,
    fold, path) of every training."""
    pooled = {}
    for mass in masses:
        by_model = {}
        for model, m, fold, path in jobs:
            if m == mass:
                by_model.setdefault(model, {})[fold] = path
        folds = sorted(set.intersection(*(set(f) for f in by_model.values()))) if by_model else []
        if len(folds) >= 2:
            pooled[mass] = {model: [files[f] for f in folds] for model, files in by_model.items()}
    return pooled


def sculpting_plot(out, model, mass):
    """img/sculpting_<model>_mH<m>.png: the background's m_JJ before and after the cut of the lowest fold."""
    return Path(out) / "img" / f"sculpting_{model.replace(' ', '_')}_mH{mass:g}.png"


# --- the event files -------------------------------------------------------------------------------------------


def study_files(signal, backgrounds, training_backgrounds):
    """The event files of the study by sample: {"signal": {mass: files}, "backgrounds": the test copies of every
    background, "training_backgrounds": their training copies}, as the workflow hands them (Study)."""
    return {"signal": {float(mass): list(map(Path, files)) for mass, files in signal.items()},
            "backgrounds": list(map(Path, backgrounds)), "training_backgrounds": list(map(Path, training_backgrounds))}


def files_in(data, masses):
    """study_files of a study directory ``data`` written by the workflow: each mass's signal by the generator's
    name (truth-tagged like the background when the study did so, else as generated), and every other file of
    truth_test/ (truth_train_physical/) as background: a sample is never left out for its name."""
    data = Path(data)

    def backgrounds(directory):
        return [f for f in sorted((data / directory).glob("*.root")) if not f.name.startswith("hh4b")]

    signal = {mass: sorted(data.glob(f"truth_test/hh4b_mH{mass:g}_*.root")) or sorted(data.glob(f"generated/hh4b_mH{mass:g}_*.root"))
              for mass in masses}
    return study_files(signal, backgrounds("truth_test"), backgrounds("truth_train_physical"))


def event_files(files, mass, folds, n_folds):
    """The signal of ``mass`` and the backgrounds (study_files ``files``) in the folds ``folds``."""
    chosen = [*files["signal"].get(float(mass), []), *files["backgrounds"]]
    return [f for f in chosen if fold_of(f, n_folds) in folds]


def read_events(files, min_tags=0):
    """The events of schema files as a Prediction without a score (for the cut-based selection)."""
    return in_tag_region(read_event_files(files, EVENT_BRANCHES), min_tags)


def training_composition(files, luminosity_fb):
    """What the networks saw against what the analysis region holds: per background sample, its training copies
    (count and share) and its share of the test copies' expected yield (the physical region), over every fold
    (``files``: study_files)."""

    def per_sample(paths):
        if not paths:
            return None
        events = read_events(paths)
        names = [str(sample_name(p, s)) for p, s in zip(events.arrays["process"], phase_space_of(events))]
        return events, np.array(names)

    train, test = per_sample(files["training_backgrounds"]), per_sample(files["backgrounds"])
    if train is None or test is None:
        return {}
    yields = yield_weights(test[0], luminosity_fb)
    total = yields.sum()
    return {name: {"training_copies": int((train[1] == name).sum()),
                   "training_share": float((train[1] == name).mean()),
                   "region_yield_share": float(yields[test[1] == name].sum() / total)}
            for name in sorted(set(test[1]))}
