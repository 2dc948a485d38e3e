"""The 9 event-object tokens (``obj_*`` branches) in the fixed slots of ``schema.OBJECT_SLOTS``.

Every event has all 9 tokens. A present object has mask 1 and type = slot index + 1; an absent
one (a missing subjet, no small-R jet outside the fat jets) is all zeros, type and mask included,
so a padded token carries no information whatever the network does with it.
"""

import numpy as np

from multiscale.kinematics import momenta

from ..schema import OBJECT_FIELDS, OBJECT_SLOTS, SUBJET_SLOTS

SLOT = {name: i for i, name in enumerate(OBJECT_SLOTS)}


def _kinematics(vectors):
    return {"pt": vectors.pt, "eta": vectors.eta, "phi": vectors.phi, "energy": vectors.E, "mass": vectors.mass}


def build_objects(fatjets, subjets, subjet_exists, jet, jet_exists, met, met_phi, subjet_tags, jet_tag):
    """Token fields as (n_events, 9) float32 arrays, keyed by ``schema.OBJECT_FIELDS``.

    ``fatjets``: (n, 2) Lorentz vectors; ``subjets``: (n, 4) in the order of ``schema.SUBJET_SLOTS``,
    with existence mask ``subjet_exists`` and b-tag decisions ``subjet_tags``;
    ``jet``: (n,) leading small-R jet outside the fat jets, ``jet_exists``, ``jet_tag``.
    """
    n = len(met)
    tokens = {field: np.zeros((n, len(OBJECT_SLOTS)), dtype=np.float32) for field in OBJECT_FIELDS}
    mask = np.zeros((n, len(OBJECT_SLOTS)), dtype=bool)
    # a fat jet counts as b-tagged when both of its subjets are (the H -> bb double tag)
    fatjet_tags = subjet_tags.reshape(n, 2, 2).all(axis=2)
    h_candidate = fatjets[:, 0] + fatjets[:, 1]

    def fill(slots, vectors, exists, btag):
        with np.errstate(invalid="ignore", divide="ignore"):  # absent (zero) vectors: zeroed below
            kinematics = _kinematics(vectors)
        for name, values in kinematics.items():
            tokens[name][:, slots] = values
        tokens["btag"][:, slots] = btag
        mask[:, slots] = exists

    fill([SLOT["fj1"], SLOT["fj2"]], fatjets, True, fatjet_tags)
    fill([SLOT[name] for name in SUBJET_SLOTS], subjets, subjet_exists, subjet_tags)
    fill(SLOT["H_cand"], h_candidate, True, fatjet_tags.all(axis=1))
    fill(SLOT["jet"], jet, jet_exists, jet_tag)
    met_vector = momenta(met * np.cos(met_phi), met * np.sin(met_phi), np.zeros(n), met)
    fill(SLOT["MET"], met_vector, True, False)
    tokens["eta"][:, SLOT["MET"]] = 0.0  # transverse only: eta of a pz = 0 vector is 0 anyway
    tokens["mass"][:, SLOT["MET"]] = 0.0  # E = |pT| exactly, not up to rounding

    tokens["type"][:] = np.arange(1, len(OBJECT_SLOTS) + 1)
    tokens["mask"][:] = mask
    for field in OBJECT_FIELDS:
        tokens[field][~mask] = 0.0
    return tokens
