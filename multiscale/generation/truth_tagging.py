"""Truth tagging: every background event counts at every b-tag requirement.

With random tagging a QCD event passes ">= 3 b-tagged subjets" with probability ~0.4%, so a
selection that asks for b-tags keeps a handful of MC events. Truth tagging keeps the truth
flavour labels of the four subjets instead and gives each event its tag configurations with
their probabilities as weights:

    P(config) = prod_j  eff_j^t_j (1 - eff_j)^(1 - t_j),   eff_j = efficiency of subjet j's flavour

The 16 configurations are grouped by the number of tagged subjets into the classes
``schema.TAG_CLASSES`` (<= 1, 2, 3, 4 tags). Every selection ">= k tags" with k = 2, 3, 4 is then a union
of whole classes and gets exact weights; a class that straddled a requirement would give its few
copies drawn on the passing side the whole class probability, and a large weight variance. In ``test`` mode an event becomes one copy per class with a
non-zero probability, its configuration drawn within the class in proportion to P(config), and
its ``weight`` multiplied by P(class): weighted yields at any tag requirement are exact in
expectation and rest on every event. The small-R jet's tag is left as generated (no selection
uses it).

In ``train`` mode the events are first unweighted: weaver trains on unweighted events, and a
pT-hat biased sample taken as it is would teach the network the biased spectrum (high-pT QCD
everywhere), which the physical background does not have. All the files of one call are unweighted
together, signal and background each against one reference: an event is kept with probability
min(a / a_ref, 1) and then carries max(a, a_ref), where a is the cross section it stands for in the
analysis region (its ``weight`` divided by the number of files of its sample in the call, times
the probability of its tag classes in the region) and a_ref the smallest reference that caps at
most ``UNWEIGHT_LOSS`` (1%) of the total. So QCD and ttbar, or the heavy-flavour filtered and
vetoed QCD samples, enter the training in their physical proportions (each file against its own
99th percentile, as before, made ttbar 10% of the training background against ~0.1% in nature).
Each kept event becomes one copy, of a tag class drawn with its probability P(class) (weight
unchanged): the training sample follows the physical tag distribution, as random tagging would.

weaver cannot weight the loss per event, so a class drawn any other way changes what the
network learns, not only the weights: drawn uniformly (this module's first version), 4-tag QCD
copies were as common in training as untagged ones, and the network learnt that b-tags tell
little, while at the physical rates they are the strongest handle (docs/results.md).

``min_tags`` restricts both modes to an analysis region of whole tag classes (e.g. 2: >= 2 tagged
subjets): only its classes get copies, in test mode with the file's ``acceptance`` times the weighted
fraction of its events in the region (so that the yields, which normalise the copies of a sample to
its cross section x acceptance, give the region's cross section), and in train mode an event stands
for its cross section inside the region. That physical mixture keeps few events, though: in the >= 2-tag region the
probability of the region spans 1e-4 (light subjets) to ~1 (four b subjets) on top of the pT-hat
weights, and 27000 QCD events unweighted together kept ~150 (measured). ``mixture="samples"``
trains on an enriched mixture instead: each sample (generator run: the heavy-flavour filtered and
vetoed QCD, ttbar) unweighted by its generator weight against its own reference, and every kept
event shown once in the region, its class drawn with its conditional probability there. The
evaluation is unchanged (physical weights, test copies); only what the networks learn from differs.

Each copy also carries ``btag_weight_up``/``btag_weight_down``, the factor P'(class) / P(class) of
its weight when the b efficiency moves by +-1 sigma (btagging.BTAG_EFF_RELATIVE_UNCERTAINTY): the
b-tagging nuisance parameter of the limits.

Signed weights (NLO samples) cannot be trained on either: weaver weighs no event, let alone
negatively. The unweighting then uses |w|: an event is kept with probability min(|w| / w_ref, 1),
w_ref the reference above taken on |w|, and carries sign(w) max(|w|, w_ref). The network trains on |w|
(the density the generator sampled, not the physical one where positive and negative events
cancel); the ``weight`` branch keeps the sign, so yields from the copies stay unbiased. Before this
was said and done, negative-weight events were dropped without a word.

The derived tags follow the generator (objects.py): a fat jet is tagged when both of its subjets
are, the H candidate when both fat jets are; ``fj{1,2}_nbtag`` count tagged subjets.
"""

import hashlib
from itertools import product
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from ..evaluation.yields import EVENT_IDENTITY, normalisation_problem, process_name, stitching_problem, tag_class_of
from ..schema import N_OBJECTS, OBJECT_SLOTS, PHASE_SPACES, SUBJET_SLOTS as SUBJET_NAMES, TAG_CLASSES, TREE_NAME
from .writer import JAGGED_GROUPS, write_root

SUBJET_SLOTS = [OBJECT_SLOTS.index(name) for name in SUBJET_NAMES]
FATJET_SLOTS = [OBJECT_SLOTS.index("fj1"), OBJECT_SLOTS.index("fj2")]
HCAND_SLOT = OBJECT_SLOTS.index("H_cand")
FLAVOUR_BRANCHES = tuple(f"{name}_flavour" for name in SUBJET_NAMES)
MODES = ("test", "train")

CONFIGS = np.array(list(product((0, 1), repeat=len(SUBJET_NAMES))), dtype=bool)  # (16, 4) tag bits
CONFIG_CLASS = tag_class_of(CONFIGS.sum(axis=1))


def configuration_probabilities(flavour, exists, efficiencies):
    """(n, 16) probability of every tag configuration of the 4 subjets (absent subjets never tag)."""
    p = np.where(exists, efficiencies.of(flavour), 0.0)  # (n, 4)
    per_jet = np.where(CONFIGS[None, :, :], p[:, None, :], 1.0 - p[:, None, :])  # (n, 16, 4)
    return per_jet.prod(axis=2)


def class_probabilities(config_prob):
    """(n, n_classes) probability of each tag class."""
    return np.stack([config_prob[:, CONFIG_CLASS == c].sum(axis=1) for c in range(len(TAG_CLASSES))], axis=1)


def draw_in_proportion(weights, rng):
    """One column index per row of ``weights`` (n, k), drawn with probability weight / row sum."""
    cumulative = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cumulative[:, -1]
    return np.minimum((cumulative <= u[:, None]).sum(axis=1), weights.shape[1] - 1)


def draw_configuration(config_prob, event, tag_class, rng):
    """One configuration index per (event, class) pair, drawn in proportion to its probability."""
    return draw_in_proportion(np.where(CONFIG_CLASS[None, :] == tag_class[:, None], config_prob[event], 0.0), rng)


def region_classes(min_tags):
    """Boolean mask of the tag classes with at least ``min_tags`` tagged subjets (whole classes only)."""
    inside = np.array([min(ks) >= min_tags for ks in TAG_CLASSES])
    if any(max(ks) >= min_tags > min(ks) for ks in TAG_CLASSES) or not inside.any():
        raise ValueError(f"min_tags {min_tags} splits a tag class {TAG_CLASSES}: choose 0, 2, 3 or 4")
    return inside


def region_fraction(weight, class_prob):
    """The weighted fraction of a file's events inside the region: its test copies' share of the file's weight.
    The yields normalise a sample's copies to its cross section x ``acceptance`` (yields.py), so the
    acceptance of a region's copies must include it; without it every sample filled the region with
    its whole preselected cross section (light QCD ~30x too much at >= 2 tags, measured in the study)."""
    weight = np.asarray(weight, dtype=np.float64)
    total = weight.sum()
    return float((weight * class_prob.sum(axis=1)).sum() / total) if total else 0.0


def copies(class_prob, mode, rng):
    """(event, tag_class, weight factor) of the copies to write, event-major."""
    if mode == "test":
        event, tag_class = np.nonzero(class_prob > 0)
        return event, tag_class, class_prob[event, tag_class]
    # train: one class per event, drawn with its probability (the physical tag distribution)
    tag_class = draw_in_proportion(class_prob, rng)
    event = np.arange(len(class_prob))
    return event, tag_class, np.ones(len(event))


UNWEIGHT_LOSS = 0.01
# train mode: what the events of one call are unweighted by and against (region_weights, unweighting_references)
MIXTURES = ("physical", "samples")


def unweighting_reference(weight, loss=UNWEIGHT_LOSS):
    """The smallest w_ref whose capping changes at most ``loss`` of the total: sum(max(|w| - w_ref, 0))
    <= loss * sum(|w|). The events above w_ref are the only ones under-represented after unweighting."""
    w = np.sort(np.abs(np.asarray(weight, dtype=np.float64)))[::-1]
    w = w[w > 0]
    if len(w) == 0:
        raise ValueError("no event with a non-zero weight to unweight")
    allowed = loss * w.sum()
    above = np.r_[0.0, np.cumsum(w)[:-1]]  # sum of the k heavier events, k = 0..n-1
    excess = above - np.arange(len(w)) * w  # sum of max(w_i - w_k, 0): non-decreasing in k
    k = int(np.searchsorted(excess, allowed, side="right"))  # w_k..w_{k-1}: the reference lies here
    if k == len(w):
        return float(w[-1])
    return float(max((above[k] - allowed) / max(k, 1), w[k]))


def unweight(weight, rng, reference):
    """(kept event indices, their new weights): accept-reject of |w| against ``reference``; a kept
    event's weight keeps its sign (negative NLO weights: trained on as |w|, see above)."""
    weight = np.asarray(weight, dtype=np.float64)
    magnitude = np.abs(weight)
    kept = np.flatnonzero(rng.random(len(weight)) < np.minimum(magnitude / reference, 1.0))
    return kept, np.sign(weight[kept]) * np.maximum(magnitude[kept], reference)


def negative_weights(path):
    """The number of events of a schema file whose ``weight`` is negative."""
    with uproot.open(path) as handle:
        return int((handle[TREE_NAME]["weight"].array(library="np") < 0).sum())


def _regular(values):
    """(events, N_OBJECTS) numpy array of a 9-per-event jagged branch (also for no event at all)."""
    return ak.to_numpy(ak.to_regular(values, axis=1)).reshape(len(values), N_OBJECTS)


def _flavour_and_exists(columns):
    flavour = np.column_stack([np.asarray(columns[name]) for name in FLAVOUR_BRANCHES])
    return flavour, _regular(columns["obj_mask"])[:, SUBJET_SLOTS] > 0


def region_weights(columns, efficiencies, min_tags=0, weight_scale=1.0, mixture="physical"):
    """What each event is unweighted by in train mode. ``physical``: the cross section it stands for in
    the analysis region, weight x weight_scale x P(region); ``samples``: its generator weight x
    weight_scale, 0 when it can never enter the region (each sample as generated, shown in the region)."""
    if mixture not in MIXTURES:
        raise ValueError(f"mixture must be one of {MIXTURES}, got {mixture!r}")
    flavour, exists = _flavour_and_exists(columns)
    in_region = class_probabilities(configuration_probabilities(flavour, exists, efficiencies))[:, region_classes(min_tags)]
    probability = in_region.sum(axis=1)
    factor = probability if mixture == "physical" else (probability > 0).astype(np.float64)
    return np.asarray(columns["weight"], dtype=np.float64) * weight_scale * factor


def expand(columns, mode, efficiencies, rng, min_tags=0, reference=None, weight_scale=1.0, mixture="physical"):
    """Truth-tagged copies of the events in ``columns`` (branch name -> array, one entry per event).

    ``min_tags``: only the tag classes of the region >= min_tags tagged subjets. Train mode:
    ``reference`` the unweighting reference of :func:`region_weights` (with ``weight_scale``, 1 / the
    files of the sample, and ``mixture``; None: this file's own, :func:`unweighting_reference`).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    region = region_classes(min_tags)
    if mode == "train":
        weight = region_weights(columns, efficiencies, min_tags, weight_scale, mixture)
        kept, weight = unweight(weight, rng, unweighting_reference(weight) if reference is None else reference)
        columns = {**{name: values[kept] for name, values in columns.items()}, "weight": weight}
    flavour, exists = _flavour_and_exists(columns)
    config_prob = configuration_probabilities(flavour, exists, efficiencies)
    class_prob = class_probabilities(config_prob) * region
    event, tag_class, factor = copies(class_prob, mode, rng)
    if mode == "train":  # the weight is the region's already: the class is drawn inside it
        factor = np.ones(len(event))
    tags = CONFIGS[draw_configuration(config_prob, event, tag_class, rng)]  # (n_copies, 4)
    varied = [class_probabilities(configuration_probabilities(flavour, exists, efficiencies.with_b_moved(s)))
              for s in (+1, -1)]

    out = {name: values[event] for name, values in columns.items()}
    if mode == "test" and "acceptance" in columns:
        out["acceptance"] = np.asarray(columns["acceptance"], dtype=np.float64)[event] * region_fraction(columns["weight"], class_prob)
    btag = _regular(columns["obj_btag"])[event].copy()
    fatjet_tags = tags.reshape(-1, 2, 2).all(axis=2)
    btag[:, SUBJET_SLOTS] = tags
    btag[:, FATJET_SLOTS] = fatjet_tags
    btag[:, HCAND_SLOT] = fatjet_tags.all(axis=1)
    out["obj_btag"] = ak.from_regular(btag.astype(np.float32), axis=1)
    nbtag = tags.reshape(-1, 2, 2).sum(axis=2)
    out["fj1_nbtag"], out["fj2_nbtag"] = nbtag[:, 0].astype(np.int32), nbtag[:, 1].astype(np.int32)
    out["weight"] = np.asarray(columns["weight"])[event] * factor
    out["tag_class"] = tag_class.astype(np.int32)
    out["tag_weight"] = factor
    nominal = class_probabilities(config_prob)[event, tag_class]
    out["btag_weight_up"], out["btag_weight_down"] = (p[event, tag_class] / nominal for p in varied)
    return out


def read_columns(path):
    """Every branch of a schema file (jagged counters dropped) as branch name -> array."""
    counters = {f"n{group}" for group in JAGGED_GROUPS}
    with uproot.open(path) as handle:
        tree = handle[TREE_NAME]
        names = [name for name in tree.keys() if name not in counters]
        arrays = tree.arrays(names)
    return {name: (arrays[name] if arrays[name].ndim > 1 else ak.to_numpy(arrays[name])) for name in names}


def _checked_columns(path):
    columns = read_columns(path)
    missing = [name for name in FLAVOUR_BRANCHES if name not in columns]
    if missing:
        raise ValueError(f"{path}: no flavour labels ({', '.join(missing)}): truth tagging needs the generator's *_flavour branches")
    return columns


def sample_of(columns):
    """(process, phase_space, gen_seed, label) of a file's events: the files of one generator run."""
    first = {name: int(np.asarray(columns[name])[0]) if name in columns else 0
             for name in ("process", "phase_space", "gen_seed", "label")}
    return tuple(first.values())


CHECKED_BRANCHES = (*EVENT_IDENTITY, "weight", "xsec_fb", "acceptance")


def _checked_branches(path):
    """The identity and normalisation branches of a schema file (those it has)."""
    with uproot.open(path) as handle:
        tree = handle[TREE_NAME]
        if "weight" not in tree.keys():
            raise ValueError(f"{path}: no 'weight' branch: truth tagging reads the generator's files (docs/schema.md)")
        return tree.arrays([name for name in CHECKED_BRANCHES if name in tree.keys()], library="np")


def _check_region_sum(path, efficiencies, min_tags):
    """Refuse a file whose weights sum to <= 0 inside the region (signed NLO weights: the file's own sum is
    positive, the region's need not be): its region copies would carry an acceptance <= 0."""
    columns = _checked_columns(path)
    flavour, exists = _flavour_and_exists(columns)
    class_prob = class_probabilities(configuration_probabilities(flavour, exists, efficiencies)) * region_classes(min_tags)
    if region_fraction(columns["weight"], class_prob) <= 0:
        raise ValueError(f"{path}: its copies in the region of >= {min_tags} b-tagged subjets: their weights sum to "
                         "<= 0, so they cannot be normalised; generate larger chunks (--events-per-file)")


def _events_digest(arrays):
    """A fingerprint of the generated events of a file (EVENT_IDENTITY, as the evaluation tells events apart);
    None without ``event_id``."""
    if "event_id" not in arrays:
        return None
    rows = np.column_stack([np.asarray(arrays[name], dtype=np.int64) for name in EVENT_IDENTITY if name in arrays])
    return hashlib.sha1(rows[np.lexsort(rows.T[::-1])].tobytes()).hexdigest()


def _named(paths, most=3):
    """The first ``most`` of ``paths`` and how many more: a one-line message."""
    paths = [str(path) for path in paths]
    return ", ".join(paths[:most]) + (f" (+{len(paths) - most} more)" if len(paths) > most else "")


def check_files(paths, mode, efficiencies=None, min_tags=0):
    """Refuse, with a ValueError of one line naming the files, the inputs whose copies the yields could not
    use: a file that cannot be normalised (yields.normalisation_problem: a chunk of signed weights summing to
    <= 0, NaN, acceptance <= 0), two files holding the same generated events and, in train mode, where the
    files of one call are one training mixture, a process whose samples overlap or miss part of its phase
    space (the evaluation's rule, yields.stitching_problem). Test mode tags each file on its own (the workflow
    one chunk per call, the stitching test the inclusive sample next to both halves): the mixture of a test
    sample is checked where its files meet, in the evaluation. With ``efficiencies``, test mode also refuses
    a file whose signed weights sum to <= 0 inside the region of >= ``min_tags`` tags (its copies could not
    be normalised), before any file is written."""
    seen, samples = {}, {}  # events digest -> path; process -> phase space -> paths
    for path in paths:
        arrays = _checked_branches(path)
        if not len(arrays["weight"]):
            continue  # nothing to tag
        problem = normalisation_problem(arrays)
        if problem:
            raise ValueError(f"{path}: {problem}")
        if mode == "test" and min_tags and efficiencies is not None:
            _check_region_sum(path, efficiencies, min_tags)
        digest = _events_digest(arrays)
        if digest is not None and digest in seen:
            raise ValueError(f"{seen[digest]} and {path} hold the same generated events: give each file once")
        seen[digest] = path
        if "process" in arrays:
            space = int(arrays["phase_space"][0]) if "phase_space" in arrays else PHASE_SPACES["inclusive"]
            samples.setdefault(int(arrays["process"][0]), {}).setdefault(space, []).append(path)
    for process, spaces in samples.items():
        problem = stitching_problem(spaces) if mode == "train" else None
        if problem:
            files = [path for paths_of in spaces.values() for path in paths_of]
            raise ValueError(f"{_named(files)}: process {process_name(process)} {problem}; the files of one "
                             "--mode train call are one training mixture")


def unweighting_references(paths, efficiencies, min_tags=0, mixture="physical"):
    """For the train mode of several files unweighted together: {path: (weight_scale, reference)}.
    A sample's files share its cross section, so each event stands for weight / (its sample's files).
    ``physical``: signal and background files each get the reference of all the files of their label;
    ``samples``: each sample its own (MIXTURES)."""
    columns = {path: _checked_columns(path) for path in paths}
    empty = [path for path, c in columns.items() if not len(c["weight"])]  # a chunk where no event passed
    samples = {path: sample_of(c) for path, c in columns.items() if path not in empty}
    files_of = {sample: list(samples.values()).count(sample) for sample in set(samples.values())}
    scale = {path: 1.0 / files_of[sample] for path, sample in samples.items()}

    def group(sample):
        return sample[-1] if mixture == "physical" else sample

    weights = {}
    for path, sample in samples.items():
        weights.setdefault(group(sample), []).append(
            region_weights(columns[path], efficiencies, min_tags, scale[path], mixture))
    reference = {key: unweighting_reference(np.concatenate(parts)) for key, parts in weights.items()}
    nothing_to_keep = {path: (1.0, 1.0) for path in empty}  # any reference: no event to unweight
    return {**nothing_to_keep, **{path: (scale[path], reference[group(sample)]) for path, sample in samples.items()}}


def truth_tag_file(in_path, out_path, mode, efficiencies, seed, min_tags=0, reference=None, weight_scale=1.0,
                   mixture="physical"):
    columns = _checked_columns(in_path)
    rng = np.random.default_rng([seed, *map(ord, Path(in_path).name)])  # per file, reproducible
    expanded = expand(columns, mode, efficiencies, rng, min_tags, reference, weight_scale, mixture)
    problem = normalisation_problem(expanded) if mode == "test" and len(expanded["weight"]) else None
    if problem:  # signed weights: the file's sum is positive (check_files), its sum inside the region need not be
        raise ValueError(f"{in_path}: its copies in the region of >= {min_tags} b-tagged subjets: {problem}")
    write_root(out_path, expanded)
    return len(columns["weight"]), len(expanded["weight"])

