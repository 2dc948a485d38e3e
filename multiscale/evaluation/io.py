"""Read the prediction files written by ``weaver --predict ... --predict-output pred.root``.

weaver writes one TTree ``Events`` holding, for ``labels: simple: [is_signal, is_background]``,
the one-hot truth (``is_signal``, ``is_background``), the softmax scores (``score_is_signal``,
``score_is_background``), ``_label_`` and the observers of the data config. Every problem with a
file is raised as :class:`PredictionError` with a one-line message naming the file, so that the
command-line tool can print it without a traceback.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import uproot

from ..schema import TREE_NAME

TRUTH_BRANCH = "is_signal"
SCORE_BRANCH = "score_is_signal"
# what the yield normalisation needs (see yields.py)
NORMALISATION_BRANCHES = ("process", "weight", "xsec_fb", "acceptance")
# what the cut-based reference needs (see cutbased.py)
CUTBASED_BRANCHES = tuple(
    f"{jet}_{field}" for jet in ("fj1", "fj2") for field in ("pt", "eta", "phi", "mass", "sdmass", "nbtag")
)
# what any weaver prediction file has (tools/evaluate.py reads the rest when present)
SCORE_ONLY = (TRUTH_BRANCH, SCORE_BRANCH)
SCHEMA_BRANCHES = ("event_id", *NORMALISATION_BRANCHES, *CUTBASED_BRANCHES)
REQUIRED_BRANCHES = (*SCORE_ONLY, *SCHEMA_BRANCHES)
# read when present: the signal mass point, to cross-check the --mH of the cut-based mjj window; the
# sample's phase space (yields.py), the run's seed (which generated event an entry is a copy of) and
# the event weight's factors under the b-tag efficiency uncertainty (limits.systematics_of)
OPTIONAL_BRANCHES = ("mH", "phase_space", "gen_seed", "btag_weight_up", "btag_weight_down")
EVERYTHING_ELSE = (*SCHEMA_BRANCHES, *OPTIONAL_BRANCHES)


class PredictionError(Exception):
    """A prediction file that cannot be evaluated; the message names the file and the reason."""


@dataclass
class Prediction:
    """The events of one prediction file (one training evaluated on one test sample)."""

    path: str
    arrays: dict  # branch name -> 1-d numpy array

    def __len__(self):
        return len(self.arrays[SCORE_BRANCH])

    @property
    def is_signal(self):
        return self.arrays[TRUTH_BRANCH].astype(bool)

    @property
    def score(self):
        return self.arrays[SCORE_BRANCH].astype(np.float64)

    @property
    def n_signal(self):
        return int(self.is_signal.sum())

    @property
    def n_background(self):
        return len(self) - self.n_signal

    def has(self, *names):
        return all(name in self.arrays for name in names)

    @classmethod
    def concatenate(cls, parts):
        """One Prediction holding the events of ``parts`` (the branches they all have)."""
        names = set.intersection(*(set(part.arrays) for part in parts))
        arrays = {name: np.concatenate([part.arrays[name] for part in parts]) for name in sorted(names)}
        return cls(path=" + ".join(str(part.path) for part in parts), arrays=arrays)


@contextmanager
def events_tree(path):
    """The ``Events`` tree of the file ``path``. A missing file, a file without the tree or one that
    cannot be read (here or in the caller's block) raises a one-line PredictionError naming it."""
    path = str(path)
    if not Path(path).is_file():
        raise PredictionError(f"{path}: no such file")
    try:
        with uproot.open(path) as handle:
            if TREE_NAME not in handle:
                found = ", ".join(sorted({key.split(";")[0] for key in handle.keys()})) or "nothing"
                raise PredictionError(f"{path}: no '{TREE_NAME}' tree (the file holds: {found})")
            yield handle[TREE_NAME]
    except PredictionError:
        raise
    except Exception as err:  # not ROOT, truncated, jagged branch, ...: say which file, keep it to one line
        reason = " ".join(str(err).split())  # uproot messages span lines
        if len(reason) > 160:
            reason = reason[:157] + "..."
        raise PredictionError(f"{path}: cannot read as a ROOT file ({type(err).__name__}: {reason})") from err


def read_prediction(path, branches=REQUIRED_BRANCHES, optional=OPTIONAL_BRANCHES, signal=TRUTH_BRANCH):
    """Read ``branches`` (all required) and ``optional`` (when present) of the ``Events`` tree.
    ``signal``: the label of the signal class (weaver writes its truth as ``<label>`` and its score as
    ``score_<label>``); it is read as ``is_signal`` / ``score_is_signal``."""
    path = str(path)
    rename = {signal: TRUTH_BRANCH, f"score_{signal}": SCORE_BRANCH}  # file name -> name read as
    in_file = {read_as: name for name, read_as in rename.items()}
    branches = [in_file.get(name, name) for name in branches]
    with events_tree(path) as tree:
        available = set(tree.keys())
        missing = [name for name in branches if name not in available]
        if missing:
            labels = sorted(key[len("score_"):] for key in available if key.startswith("score_"))
            hint = f" (its labels: {', '.join(labels)}; choose the signal with --signal)" if (
                signal in missing and labels) else ""
            raise PredictionError(f"{path}: missing branch(es) {', '.join(missing)} in tree '{TREE_NAME}'{hint}")
        wanted = list(branches) + [name for name in optional if name in available]
        arrays = tree.arrays(wanted, library="np")
    prediction = Prediction(path, {rename.get(name, name): np.asarray(values) for name, values in arrays.items()})
    _check_content(prediction)
    return prediction


def _check_content(prediction):
    """A ROC needs both classes; the branches must hold one finite number per event (score, weight)."""
    for name, values in prediction.arrays.items():
        if values.ndim != 1 or values.dtype == object:
            raise PredictionError(f"{prediction.path}: branch '{name}' is not a scalar per event")
    if len(prediction) == 0:
        raise PredictionError(f"{prediction.path}: the '{TREE_NAME}' tree has no entries")
    if prediction.n_signal == 0 or prediction.n_background == 0:
        raise PredictionError(
            f"{prediction.path}: needs signal and background events, found {prediction.n_signal} signal "
            f"and {prediction.n_background} background ('{TRUTH_BRANCH}'): predict on a test sample that holds both"
        )
    for name in (SCORE_BRANCH, "weight"):
        if name in prediction.arrays and not np.all(np.isfinite(prediction.arrays[name])):
            raise PredictionError(f"{prediction.path}: '{name}' holds NaN or infinite values")


def read_event_files(files, branches):
    """The events of schema files (generator or truth-tagging output, no score) as one Prediction, for
    the selections that need no classifier: ``branches`` (those of them the files have) and a zero score."""
    parts = []
    for path in files:
        with events_tree(path) as tree:
            available = [name for name in branches if name in tree.keys()]
            parts.append(Prediction(str(path), {name: np.asarray(v) for name, v in tree.arrays(available, library="np").items()}))
    events = Prediction.concatenate(parts)
    events.arrays[SCORE_BRANCH] = np.zeros(len(events.arrays["weight"]))
    events.path = f"{len(files)} event files"
    return events


def read_predictions(paths, progress=None, **options):
    """Read several files (``options``: those of read_prediction); a tqdm bar appears when there are
    many (``progress=None``: more than 8)."""
    paths = list(paths)
    if progress is None:
        progress = len(paths) > 8
    if progress:
        from tqdm import tqdm

        paths = tqdm(paths, desc="reading predictions", unit="file")
    return [read_prediction(path, **options) for path in paths]
