"""Expected event yields at a luminosity, from the normalisation observers of the prediction file.

For a sample g (a process, ``process`` branch, and the part of its phase space the sample covers,
``phase_space`` branch: inclusive, or heavy-flavour filtered / vetoed, schema.PHASE_SPACES) the
expected yield of event i of g at an integrated luminosity L (fb^-1) is

    y_i = L * sigmaA_g * w_i / sum_{j in g} w_j

* ``sigmaA_g`` = mean of ``xsec_fb * acceptance`` over the events of g in the evaluated sample:
  the cross section (fb) of the sample (for a filtered or vetoed one, the process's cross section
  times the weighted fraction of the tried events it kept) times the preselection acceptance of the
  file each event came from. Averaging per event works however many files the sample had, as long
  as the files of one sample cover the same phase space (they differ only by seed, so their
  acceptances agree within statistics).
* ``w_i`` = the ``weight`` branch. Weighted MC (Pythia pT-hat biasing, truth-tagged copies each
  carrying the probability of its b-tag configuration) has non-uniform weights; only their ratios
  within a sample matter, the sample total is fixed by sigmaA_g. For unweighted MC (uniform w)
  every event of g carries ``L * sigmaA_g / n_g`` (n_g = MC events of g in the sample).

Each sample is normalised on its own, so the heavy-flavour filtered and vetoed samples of one
process, whose phase spaces differ, add up to the process without biasing each other. A process
given by its inclusive sample *and* a filtered or vetoed one would be counted twice, and one
given by only one of the two stitched samples would miss part of its phase space: both stop with
an error naming the process (:func:`stitching_problem`, the rule truth tagging applies to a training
mixture too). So does a sample whose ``xsec_fb`` or ``acceptance`` is not a finite number > 0 for
every event, or whose weights do not sum to > 0 (:func:`normalisation_problem`): e.g. a small
generator chunk of signed NLO weights summing to <= 0, whose acceptance comes out <= 0 and whose
weights all change sign; taken as they are they gave B < 0.

A yield is a sum of y_i over the selected events, so N_g(cut) = L * sigmaA_g * eps_g(cut) with
eps_g the weighted fraction of g passing the cut. The result does not depend on which fraction of
the generated events ended up in the test sample.

MC statistics of a selection (:func:`mc_statistics`): the yield sum(y), its MC statistical
uncertainty and the effective number of MC events N_eff = (sum y)^2 / sum(y^2). The copies of one
generated event (truth tagging writes one per b-tag class, all with the event's kinematics) are
one MC event: their yields are summed per event before squaring (``event``: :func:`event_index`),
so sum(y^2) becomes sum over events of (sum of its selected copies' y)^2. Counted copy by copy,
one 4-b event at >= 2 tags would count as N_eff = 2.75 and the MC uncertainty would come out too
small.
"""

import numpy as np

from ..schema import FATJET_PREFIXES, PHASE_SPACES, PROCESS_CODES, STITCHED_PHASE_SPACES, TAG_CLASSES
from .io import PredictionError

PROCESS_NAMES = {code: name for name, code in PROCESS_CODES.items()}
PHASE_SPACE_NAMES = {code: name for name, code in PHASE_SPACES.items()}
EVENT_IDENTITY = ("process", "phase_space", "gen_seed", "event_id")  # the branches that identify a generated event


def process_name(code):
    return PROCESS_NAMES.get(int(code), f"process_{int(code)}")


def sample_name(code, phase_space):
    name = process_name(code)
    return name if phase_space == PHASE_SPACES["inclusive"] else f"{name} ({PHASE_SPACE_NAMES[int(phase_space)]})"


def phase_space_of(prediction):
    """The ``phase_space`` of every event (inclusive where the file has no such branch)."""
    values = prediction.arrays.get("phase_space")
    if values is None:
        return np.full(len(prediction), PHASE_SPACES["inclusive"], dtype=np.int64)
    values = np.asarray(values, dtype=np.int64)
    unknown = sorted(set(np.unique(values).tolist()) - set(PHASE_SPACES.values()))
    if unknown:
        raise PredictionError(f"{prediction.path}: unknown phase_space codes {unknown} (known: {PHASE_SPACES})")
    return values


def tag_count(arrays):
    """The b-tagged subjets of each entry, both fat jets together (fj1_nbtag + fj2_nbtag)."""
    return sum(np.asarray(arrays[f"{jet}_nbtag"], dtype=np.int64) for jet in FATJET_PREFIXES)


def tag_class_of(n_tags):
    """The index in schema.TAG_CLASSES of the class of each number of b-tagged subjets."""
    return np.searchsorted([min(counts) for counts in TAG_CLASSES], n_tags, side="right") - 1


def event_index(prediction):
    """An integer per entry, equal for the copies of one generated event (same process, phase space,
    gen_seed and event_id, those of these branches that the file has); every entry its own event
    when there is no ``event_id``."""
    arrays = prediction.arrays
    if "event_id" not in arrays:
        return np.arange(len(prediction))
    columns = [phase_space_of(prediction) if name == "phase_space" else np.asarray(arrays[name], dtype=np.int64)
               for name in EVENT_IDENTITY if name in arrays or name == "phase_space"]
    return np.unique(np.column_stack(columns), axis=0, return_inverse=True)[1].ravel()


def per_event_sumw2(yields, event=None):
    """sum over events of (sum of the event's entries' yields)^2: sum(y^2) when ``event`` is None."""
    yields = np.asarray(yields, dtype=np.float64)
    if event is None:
        return float(np.square(yields).sum())
    _, inverse = np.unique(np.asarray(event), return_inverse=True)
    return float(np.square(np.bincount(inverse.ravel(), weights=yields)).sum())


def mc_statistics(yields, event=None):
    """{yield, stat_uncertainty, effective_events} of the entries whose yields are ``yields``:
    sum(y), sqrt(sumw2) and (sum y)^2 / sumw2 (0 when nothing is selected), sumw2 summed per event
    when ``event`` (the entries' :func:`event_index`) is given."""
    yields = np.asarray(yields, dtype=np.float64)
    total, sumw2 = float(yields.sum()), per_event_sumw2(yields, event)
    return {
        "yield": total,
        "stat_uncertainty": float(np.sqrt(sumw2)),
        "effective_events": total**2 / sumw2 if sumw2 > 0 else 0.0,
    }


# the generate_events.py --hf-filter mode of each stitched sample
HF_FILTER_MODES = {PHASE_SPACES["hf_filtered"]: "require", PHASE_SPACES["hf_vetoed"]: "veto"}


def stitching_problem(phase_spaces):
    """Why a process given by samples of ``phase_spaces`` (codes) would be counted wrongly, None when it
    would not: a process comes from its inclusive sample or from both stitched samples, nothing else.
    The one rule of the yields (:func:`process_table`) and of truth tagging's training mixtures."""
    present = set(phase_spaces)
    if present == {PHASE_SPACES["inclusive"]} or present == set(STITCHED_PHASE_SPACES):
        return None
    names = sorted(PHASE_SPACE_NAMES[p] for p in present)
    if PHASE_SPACES["inclusive"] in present:
        return (f"holds the samples {names}: the inclusive sample overlaps the filtered and vetoed ones "
                "(double counting); give the inclusive sample or both heavy-flavour samples, not both")
    (missing,) = set(STITCHED_PHASE_SPACES) - present
    return (f"holds only the {names[0]} sample: part of the phase space is missing without its complement "
            f"{PHASE_SPACE_NAMES[missing]} (generate_events.py --hf-filter {HF_FILTER_MODES[missing]})")


def _check_stitching(prediction, process, phase_space):
    for code in np.unique(process):
        problem = stitching_problem(np.unique(phase_space[process == code]).tolist())
        if problem:
            raise PredictionError(f"{prediction.path}: process {process_name(code)} {problem}")


NLO_CHUNK_HINT = ("a file whose signed (NLO) weights sum to <= 0 cannot be normalised on its own: generate it with "
                  "more events per file (generate_events.py --events-per-file)")


def normalisation_problem(arrays):
    """Why the events of ``arrays`` (branch -> values; xsec_fb and acceptance checked when present) cannot
    stand for a cross section, None when they can: xsec_fb and acceptance finite and > 0, every weight
    finite, the weights summing to > 0. One sample (yields) or one schema file (truth tagging)."""
    for name in ("xsec_fb", "acceptance", "weight"):
        if name not in arrays:
            continue
        values = np.asarray(arrays[name], dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.all():
            return f"branch '{name}' is NaN or infinite for {int((~finite).sum())} of {len(values)} events"
        if name != "weight" and not np.all(values > 0):
            bad = values[values <= 0]
            hint = (NLO_CHUNK_HINT if name == "acceptance"
                    else "the cross section must be positive (generate_events.py --xsec-fb)")
            return f"branch '{name}' is {bad[0]:g} (<= 0) for {len(bad)} of {len(values)} events: {hint}"
    total = float(np.sum(arrays["weight"]))
    if not total > 0:
        return f"the 'weight' sums to {total:g}, not > 0: {NLO_CHUNK_HINT}"
    return None


def process_table(prediction, check_stitching=True):
    """Per sample (process, phase space): {name, process, phase_space, is_signal, n_events, sum_weights,
    effective_events, sigma_x_acceptance_fb}, keyed by (process code, phase space code); raises on a
    mixed-label sample, a sample that cannot be normalised (:func:`normalisation_problem`) and (``check_stitching``)
    a process whose samples overlap or miss part of its phase space."""
    arrays = prediction.arrays
    process = arrays["process"].astype(np.int64)
    phase_space = phase_space_of(prediction)
    if check_stitching:
        _check_stitching(prediction, process, phase_space)
    sigma_acc = arrays["xsec_fb"].astype(np.float64) * arrays["acceptance"].astype(np.float64)
    weight = arrays["weight"].astype(np.float64)
    is_signal = prediction.is_signal
    table = {}
    for code, space in sorted(set(zip(process.tolist(), phase_space.tolist()))):
        in_sample = (process == code) & (phase_space == space)
        name = sample_name(code, space)
        labels = np.unique(is_signal[in_sample])
        if len(labels) != 1:
            raise PredictionError(f"{prediction.path}: sample {name} holds both signal and background events")
        problem = normalisation_problem({branch: arrays[branch][in_sample]
                                         for branch in ("xsec_fb", "acceptance", "weight")})
        if problem:
            raise PredictionError(f"{prediction.path}: sample {name}: {problem}")
        sum_weights = float(weight[in_sample].sum())
        table[(code, space)] = {
            "name": name,
            "process": process_name(code),
            "phase_space": PHASE_SPACE_NAMES[space],
            "is_signal": bool(labels[0]),
            "n_events": int(in_sample.sum()),
            "sum_weights": sum_weights,
            "effective_events": mc_statistics(weight[in_sample])["effective_events"],
            "sigma_x_acceptance_fb": float(sigma_acc[in_sample].mean()),
        }
    return table


def yield_weights(prediction, luminosity_fb, check_stitching=True):
    """Per-event expected yield ``L * sigmaA_g * w_i / sum_{j in g} w_j`` at ``luminosity_fb`` (fb^-1)."""
    process = prediction.arrays["process"].astype(np.int64)
    phase_space = phase_space_of(prediction)
    weight = prediction.arrays["weight"].astype(np.float64)
    yields = np.zeros(len(prediction), dtype=np.float64)
    for (code, space), entry in process_table(prediction, check_stitching).items():
        in_sample = (process == code) & (phase_space == space)
        yields[in_sample] = luminosity_fb * entry["sigma_x_acceptance_fb"] * weight[in_sample] / entry["sum_weights"]
    return yields


def restrict(prediction, selected):
    """The events ``selected`` (a boolean mask) as a Prediction with the yields they have in ``prediction``:
    each sample's ``acceptance`` times the weighted fraction of it that is kept, since the yields normalise
    a sample's events to its cross section x acceptance (dropping events alone would scale the rest up)."""
    selected = np.asarray(selected, dtype=bool)
    process = prediction.arrays["process"].astype(np.int64)
    phase_space = phase_space_of(prediction)
    weight = prediction.arrays["weight"].astype(np.float64)
    acceptance = prediction.arrays["acceptance"].astype(np.float64).copy()
    for code, space in set(zip(process.tolist(), phase_space.tolist())):
        in_sample = (process == code) & (phase_space == space)
        acceptance[in_sample] *= weight[in_sample & selected].sum() / weight[in_sample].sum()
    arrays = {name: np.asarray(values)[selected] for name, values in prediction.arrays.items()}
    arrays["acceptance"] = acceptance[selected]
    return type(prediction)(prediction.path, arrays)


def expected_yields(prediction, luminosity_fb, selected=None):
    """Expected signal and background events (S, B) passing the boolean mask ``selected`` (all if None)."""
    weights = yield_weights(prediction, luminosity_fb)
    if selected is not None:
        weights = np.where(selected, weights, 0.0)
    is_signal = prediction.is_signal
    return float(weights[is_signal].sum()), float(weights[~is_signal].sum())


def background_statistics(prediction, luminosity_fb, selected=None):
    """Background MC statistics of the events passing ``selected`` (all if None), the copies of one
    generated event counted as one: see :func:`mc_statistics`."""
    weights = yield_weights(prediction, luminosity_fb)
    keep = ~prediction.is_signal if selected is None else (~prediction.is_signal & np.asarray(selected, dtype=bool))
    return mc_statistics(weights[keep], event_index(prediction)[keep])
