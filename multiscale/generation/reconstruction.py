"""From a batch of Pythia events to the ntuple columns of the events passing the preselection.

Visible final-state particles with |eta| < 2.5 are clustered into anti-kT R = 1.0 fat jets and
anti-kT R = 0.4 small-R jets; the two leading fat jets must pass the preselection (a
``definitions.Preselection``). Everything is computed for all events of the batch at once.
"""

from dataclasses import dataclass

import awkward as ak
import fastjet
import numpy as np

from multiscale.kinematics import delta_r, momenta, pseudorapidity, wrap_phi

from ..schema import CONSTITUENT_FIELDS, FATJET_PREFIXES, FLAVOUR_JETS
from .btagging import FLAVOUR_B, FLAVOUR_C, apply_tagging, btag_weight_variations, label_jets, select_hadrons
from .clustering import KtReclustering, cluster_inclusive, nsubjettiness, softdrop_mass
from .event_record import offsets_of
from .objects import build_objects

PARTICLE_ETA_MAX = 2.5  # tracker-like acceptance of the clustered particles
MET_ETA_MAX = 4.9  # calorimeter acceptance for missing pT
FATJET_R = 1.0
SMALLJET_R = 0.4
SMALLJET_PT_MIN = 30.0
SMALLJET_ETA_MAX = 2.5
JET_FATJET_MIN_DR = 1.0  # the "jet" token must lie outside both fat jets
SOFTDROP_BETA, SOFTDROP_ZCUT = 0.0, 0.1
TAGGED_JETS = FLAVOUR_JETS  # column order of the b-tag arrays: the four subjets, then the small-R jet


def _regular(array):
    """A (n, k) numpy array from an awkward array whose lists all have length k."""
    return ak.to_numpy(ak.to_regular(array, axis=1))


@dataclass
class _Particles:
    """Per-event particle lists as flat indices into the batch (grouped by event) and counts."""

    index: np.ndarray
    counts: np.ndarray

    def four_momenta(self, batch, keep=slice(None)):
        index = self.index[keep]
        return batch.px[index], batch.py[index], batch.pz[index], batch.energy[index]


def reconstruct(batch, charges, selection, efficiencies, rng):
    """Columns (branch name -> array) of the accepted events of ``batch``.

    Returns ``(accepted, columns)``: ``accepted`` the indices of the accepted events in the
    batch, ``columns`` numpy arrays (scalars) or awkward arrays (constituents, objects) with one
    entry per accepted event, or None if no event passed.
    """
    eta = pseudorapidity(batch.px, batch.py, batch.pz)
    visible = batch.is_visible_final()
    inputs = np.flatnonzero(visible & (np.abs(eta) < PARTICLE_ETA_MAX))
    particles = _Particles(inputs, np.bincount(batch.event_of[inputs], minlength=batch.n_events))

    accepted, fatjets, constituents = _select_fatjets(batch, particles, selection)
    if len(accepted) == 0:
        return accepted, None
    n_acc = len(accepted)
    counts = constituents.counts
    cons = constituents.four_momenta(batch)
    fj = fatjets.reshape(-1)  # event 0 fj1, event 0 fj2, event 1 fj1, ...

    columns = _constituent_columns(batch, constituents, fj, charges, selection.max_constituents)
    kt = KtReclustering(*cons, counts)
    taus = nsubjettiness(*cons, counts, kt, n_max=3, r0=FATJET_R)
    fatjet_fields = {
        "pt": fj.pt,
        "eta": fj.eta,
        "phi": fj.phi,
        "energy": fj.E,
        "mass": fj.mass,
        "sdmass": softdrop_mass(*cons, counts, beta=SOFTDROP_BETA, zcut=SOFTDROP_ZCUT, r0=FATJET_R),
        "tau1": taus[:, 0],
        "tau2": taus[:, 1],
        "tau3": taus[:, 2],
        "nparticles": counts,
    }

    # subjets: exclusive kT, 2 per fat jet -> (n_acc, 4) in slot order fj1_sj1, fj1_sj2, fj2_sj1, fj2_sj2
    *sj_momenta, sj_exists = kt.exclusive_jets(2)
    subjets = momenta(*(a.reshape(n_acc, 4) for a in sj_momenta))
    subjet_exists = sj_exists.reshape(n_acc, 4)

    jet, jet_exists, ht = _small_jets(batch, particles, accepted, fatjets)

    # b-tagging of the 4 subjets and the small-R jet
    with np.errstate(invalid="ignore", divide="ignore"):  # absent jets are zero vectors
        tag_eta = np.nan_to_num(np.column_stack([subjets.eta, jet.eta]))
        tag_phi = np.column_stack([subjets.phi, jet.phi])
    tag_pt = np.column_stack([subjets.pt, jet.pt])
    tag_exists = np.column_stack([subjet_exists, jet_exists])
    b_hadrons = select_hadrons(batch, FLAVOUR_B, accepted)
    c_hadrons = select_hadrons(batch, FLAVOUR_C, accepted)
    flavour = label_jets(tag_pt, tag_eta, tag_phi, tag_exists, b_hadrons, c_hadrons, n_subjets=4)
    tags = apply_tagging(flavour, tag_exists, efficiencies, rng)
    nbtag = tags[:, :4].reshape(n_acc, 2, 2).sum(axis=2)
    # the analysis counts the subjets' tags: their weight under the b-efficiency uncertainty
    columns["btag_weight_up"], columns["btag_weight_down"] = btag_weight_variations(
        flavour[:, :4], subjet_exists, tags[:, :4], efficiencies)

    met, met_phi = _missing_pt(batch, visible & (np.abs(eta) < MET_ETA_MAX), accepted)

    for i, prefix in enumerate(FATJET_PREFIXES):
        for field, values in fatjet_fields.items():
            dtype = np.int32 if field == "nparticles" else np.float32
            columns[f"{prefix}_{field}"] = np.asarray(values).reshape(n_acc, 2)[:, i].astype(dtype)
        columns[f"{prefix}_nbtag"] = nbtag[:, i].astype(np.int32)
    tokens = build_objects(fatjets, subjets, subjet_exists, jet, jet_exists, met, met_phi, tags[:, :4], tags[:, 4])
    for field, values in tokens.items():
        columns[f"obj_{field}"] = ak.from_regular(values, axis=1)
    columns.update(met=met.astype(np.float32), met_phi=met_phi.astype(np.float32), ht=ht.astype(np.float32))
    # truth labels of the tagged jets (5 b, 4 c, 0 light): for b-tag studies, not network inputs
    for slot, name in enumerate(TAGGED_JETS):
        columns[f"{name}_flavour"] = flavour[:, slot].astype(np.int32)
    return accepted, columns


def _select_fatjets(batch, particles, selection):
    """Cluster fat jets and apply the preselection to the two leading ones with |eta| < etamax.

    Returns the accepted event indices, their two fat jets as (n_acc, 2) Lorentz vectors and
    the constituents of these 2 * n_acc jets as ``_Particles`` (pT-descending within each jet).
    """
    jets, constituents = cluster_inclusive(
        *particles.four_momenta(batch), particles.counts, fastjet.antikt_algorithm, FATJET_R,
        ptmin=min(selection.fj1_ptmin, selection.fj2_ptmin),
    )
    jet_eta = pseudorapidity(jets.px, jets.py, jets.pz)
    central = ak.local_index(jets.px, axis=1)[np.abs(jet_eta) < selection.fj_etamax][:, :2]
    leading_pt = ak.to_numpy(ak.fill_none(ak.pad_none(np.hypot(jets.px, jets.py)[central], 2, clip=True), 0.0))
    accepted = np.flatnonzero((leading_pt[:, 0] > selection.fj1_ptmin) & (leading_pt[:, 1] > selection.fj2_ptmin))
    if len(accepted) == 0:
        return accepted, None, None
    chosen = central[accepted]
    fatjets = momenta(*(_regular(getattr(jets[accepted][chosen], f)) for f in ("px", "py", "pz", "E")))

    # constituent indices: local to the event's input list -> flat batch indices
    local = constituents[accepted][chosen] + offsets_of(particles.counts)[accepted]
    index = particles.index[ak.to_numpy(ak.flatten(local, axis=None))]
    counts = ak.to_numpy(ak.flatten(ak.num(local, axis=2)))
    jet_of = np.repeat(np.arange(len(counts)), counts)
    index = index[np.lexsort((-np.hypot(batch.px[index], batch.py[index]), jet_of))]
    return accepted, fatjets, _Particles(index, counts)


def _constituent_columns(batch, constituents, fatjets, charges, max_constituents):
    """The fj*_part_* columns: features of the leading ``max_constituents`` of every fat jet."""
    counts = constituents.counts
    px, py, pz, energy = constituents.four_momenta(batch)
    pid = batch.pid[constituents.index]
    features = {
        "px": px,
        "py": py,
        "pz": pz,
        "energy": energy,
        "deta": pseudorapidity(px, py, pz) - np.repeat(fatjets.eta, counts),
        "dphi": wrap_phi(np.arctan2(py, px) - np.repeat(fatjets.phi, counts)),
        "charge": charges(pid),
        "pid": pid,
    }
    rank = np.arange(len(pid)) - np.repeat(offsets_of(counts), counts)
    keep = rank < max_constituents
    kept_counts = np.minimum(counts, max_constituents)
    columns = {}
    for i, prefix in enumerate(FATJET_PREFIXES):
        for field in CONSTITUENT_FIELDS:
            dtype = np.int32 if field == "pid" else np.float32
            jagged = ak.unflatten(features[field][keep].astype(dtype), kept_counts)
            columns[f"{prefix}_part_{field}"] = jagged[i::2]
    return columns


def _small_jets(batch, particles, accepted, fatjets):
    """The leading small-R jet away from both fat jets (vector, exists) and HT, per accepted event."""
    in_accepted = np.isin(batch.event_of[particles.index], accepted)
    jets, _ = cluster_inclusive(
        *particles.four_momenta(batch, in_accepted), particles.counts[accepted], fastjet.antikt_algorithm,
        SMALLJET_R, ptmin=SMALLJET_PT_MIN,
    )
    eta = pseudorapidity(jets.px, jets.py, jets.pz)
    phi = np.arctan2(jets.py, jets.px)
    good = np.abs(eta) < SMALLJET_ETA_MAX
    ht = ak.to_numpy(ak.sum(np.hypot(jets.px, jets.py)[good], axis=1))
    isolated = good
    for k in range(2):
        isolated = isolated & (delta_r(eta, phi, fatjets.eta[:, k], fatjets.phi[:, k]) > JET_FATJET_MIN_DR)
    leading = ak.pad_none(jets[isolated][:, :1], 1, clip=True)
    jet = momenta(*(ak.to_numpy(ak.fill_none(getattr(leading, f), 0.0))[:, 0] for f in ("px", "py", "pz", "E")))
    return jet, ak.to_numpy(ak.num(jets[isolated]) > 0), ht


def _missing_pt(batch, measured, accepted):
    """Magnitude and azimuth of minus the vector pT sum of the ``measured`` particles."""
    event = batch.event_of[measured]
    mpx = -np.bincount(event, batch.px[measured], minlength=batch.n_events)[accepted]
    mpy = -np.bincount(event, batch.py[measured], minlength=batch.n_events)[accepted]
    return np.hypot(mpx, mpy), np.arctan2(mpy, mpx)
