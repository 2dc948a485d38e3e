"""Truth tagging: every background event counts at every b-tag requirement.

With random tagging a QCD event passes ">= 3 b-tagged subjets" with probability ~0.4%, so a
selection that asks for b-tags keeps a handful of MC events. Truth tagging keeps the truth
flavour labels of the four subjets instead and gives each event its tag configurations with
their probabilities as weights:

    P(config) = prod_j  eff_j^t_j (1 - eff_j)^(1 - t_j),   eff_j = efficiency of subjet j's flavour

The 16 configurations are grouped by the number of tagged subjets into the classes
``TAG_CLASSES`` (<= 1, 2, 3, 4 tags). Every selection ">= k tags" with k = 2, 3, 4 is then a union
of whole classes and gets exact weights; a class that straddled a requirement would give its few
copies drawn on the passing side the whole class probability, and a large weight variance. In ``test`` mode an event becomes one copy per class with a
non-zero probability, its configuration drawn within the class in proportion to P(config), and
its ``weight`` multiplied by P(class): weighted yields at any tag requirement are exact in
expectation and rest on every event. The small-R jet's tag is left as generated (no selection
uses it).

In ``train`` mode the events are first unweighted: weaver trains on unweighted events, and a
pT-hat biased sample taken as it is would teach the network the biased spectrum (high-pT QCD
everywhere), which the physical background does not have. An event is kept with probability
min(w / w_ref, 1), w_ref the 99th percentile of the file's weights, and then carries
max(w, w_ref). Each kept event becomes one copy, of a tag class drawn with its probability P(class)
(weight unchanged): the training sample follows the physical tag distribution, as random tagging
would. weaver cannot weight the loss per event, so a class drawn any other way changes what the
network learns, not only the weights: drawn uniformly (this module's first version), 4-tag QCD
copies were as common in training as untagged ones, and the network learnt that b-tags tell
little, while at the physical rates they are the strongest handle (docs/results.md).

The derived tags follow the generator (objects.py): a fat jet is tagged when both of its subjets
are, the H candidate when both fat jets are; ``fj{1,2}_nbtag`` count tagged subjets.
"""

from itertools import product
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from ..schema import OBJECT_SLOTS, SUBJET_SLOTS as SUBJET_NAMES, TREE_NAME
from .writer import JAGGED_GROUPS, write_root

SUBJET_SLOTS = [OBJECT_SLOTS.index(name) for name in SUBJET_NAMES]
FATJET_SLOTS = [OBJECT_SLOTS.index("fj1"), OBJECT_SLOTS.index("fj2")]
HCAND_SLOT = OBJECT_SLOTS.index("H_cand")
FLAVOUR_BRANCHES = tuple(f"{name}_flavour" for name in SUBJET_NAMES)
TAG_CLASSES = ((0, 1), (2,), (3,), (4,))  # numbers of tagged subjets in each class
MODES = ("test", "train")

CONFIGS = np.array(list(product((0, 1), repeat=4)), dtype=bool)  # (16, 4) tag bits
CONFIG_CLASS = np.array([next(c for c, ks in enumerate(TAG_CLASSES) if n in ks) for n in CONFIGS.sum(axis=1)])


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


def copies(class_prob, mode, rng):
    """(event, tag_class, weight factor) of the copies to write, event-major."""
    if mode == "test":
        event, tag_class = np.nonzero(class_prob > 0)
        return event, tag_class, class_prob[event, tag_class]
    # train: one class per event, drawn with its probability (the physical tag distribution)
    tag_class = draw_in_proportion(class_prob, rng)
    event = np.arange(len(class_prob))
    return event, tag_class, np.ones(len(event))


UNWEIGHT_QUANTILE = 0.99


def unweight(weight, rng, quantile=UNWEIGHT_QUANTILE):
    """(kept event indices, their new weights): accept-reject against the ``quantile`` of the weights."""
    weight = np.asarray(weight, dtype=np.float64)
    reference = np.quantile(weight, quantile)
    kept = np.flatnonzero(rng.random(len(weight)) < np.minimum(weight / reference, 1.0))
    return kept, np.maximum(weight[kept], reference)


def _regular(values):
    return ak.to_numpy(ak.to_regular(values, axis=1))


def expand(columns, mode, efficiencies, rng):
    """Truth-tagged copies of the events in ``columns`` (branch name -> array, one entry per event)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "train":
        kept, weight = unweight(columns["weight"], rng)
        columns = {**{name: values[kept] for name, values in columns.items()}, "weight": weight}
    flavour = np.column_stack([np.asarray(columns[name]) for name in FLAVOUR_BRANCHES])
    exists = _regular(columns["obj_mask"])[:, SUBJET_SLOTS] > 0
    config_prob = configuration_probabilities(flavour, exists, efficiencies)
    event, tag_class, factor = copies(class_probabilities(config_prob), mode, rng)
    tags = CONFIGS[draw_configuration(config_prob, event, tag_class, rng)]  # (n_copies, 4)

    out = {name: values[event] for name, values in columns.items()}
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
    return out


def read_columns(path):
    """Every branch of a schema file (jagged counters dropped) as branch name -> array."""
    counters = {f"n{group}" for group in JAGGED_GROUPS}
    with uproot.open(path) as handle:
        tree = handle[TREE_NAME]
        names = [name for name in tree.keys() if name not in counters]
        arrays = tree.arrays(names)
    return {name: (arrays[name] if arrays[name].ndim > 1 else ak.to_numpy(arrays[name])) for name in names}


def truth_tag_file(in_path, out_path, mode, efficiencies, seed):
    columns = read_columns(in_path)
    missing = [name for name in FLAVOUR_BRANCHES if name not in columns]
    if missing:
        raise ValueError(f"{in_path}: no flavour labels ({', '.join(missing)}): truth tagging needs the generator's *_flavour branches")
    rng = np.random.default_rng([seed, *map(ord, Path(in_path).name)])  # per file, reproducible
    expanded = expand(columns, mode, efficiencies, rng)
    write_root(out_path, expanded)
    return len(columns["weight"]), len(expanded["weight"])

