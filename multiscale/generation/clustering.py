"""Jet clustering with FastJet's awkward interface, plus soft drop, N-subjettiness and subjets.

Every function clusters many independent groups of particles (the events of a batch, or the
constituents of many fat jets) in one FastJet call: the inputs are flat numpy arrays plus the
number of particles per group, so no PseudoJet is built in Python.
"""

import os
import warnings

import awkward as ak
import fastjet
import numpy as np

from multiscale.kinematics import rapidity, wrap_phi

# Reclustering a fat jet's constituents with this radius never merges with the beam: every
# pairwise distance wins, as in FastJet contrib's Recluster and KT_Axes (JetDefinition::max_allowable_R).
RECLUSTER_R = 1000.0

# fastjet's awkward interface warns on every exclusive-jet call, even for kT/C-A (a check that
# compares a JetDefinition to an algorithm enum); the warning does not apply to our use.
_SPURIOUS_WARNING = "dcut and exclusive jets for jet-finders other than kt"


def silence_banner():
    """Print FastJet's once-per-process banner to /dev/null (call before forking workers)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    try:
        os.dup2(devnull, 1)
        one = _to_awkward(np.ones(1), np.zeros(1), np.zeros(1), np.full(1, 2.0), np.array([1]))
        fastjet.ClusterSequence(one, fastjet.JetDefinition(fastjet.antikt_algorithm, 0.4)).inclusive_jets()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _to_awkward(px, py, pz, energy, counts):
    """Jagged (group x particle) records in the layout FastJet's multi-event interface expects."""
    flat = ak.zip({"px": px, "py": py, "pz": pz, "E": energy})
    return ak.unflatten(flat, np.asarray(counts, dtype=np.int64))


def cluster_inclusive(px, py, pz, energy, counts, algorithm, radius, ptmin):
    """Inclusive jets of every group, sorted by pT (descending), with their constituents.

    Returns ``(jets, constituents)``: ``jets`` a jagged (group x jet) record array with px, py,
    pz, E; ``constituents`` a jagged (group x jet x particle) array of indices into the group's
    particles.
    """
    sequence = fastjet.ClusterSequence(
        _to_awkward(px, py, pz, energy, counts), fastjet.JetDefinition(algorithm, radius)
    )
    jets = sequence.inclusive_jets(min_pt=ptmin)
    constituents = sequence.constituent_index(min_pt=ptmin)
    order = ak.argsort(np.hypot(jets.px, jets.py), axis=1, ascending=False)
    return jets[order], constituents[order]


class KtReclustering:
    """Exclusive kT reclustering of each group (a fat jet's constituents): subjets and axes."""

    def __init__(self, px, py, pz, energy, counts):
        self._sequence = fastjet.ClusterSequence(
            _to_awkward(px, py, pz, energy, counts), fastjet.JetDefinition(fastjet.kt_algorithm, RECLUSTER_R)
        )

    def exclusive_jets(self, n_jets):
        """At most ``n_jets`` exclusive jets per group as (n_groups, n_jets) numpy arrays.

        Returns ``(px, py, pz, E, exists)``, jets sorted by pT; ``exists`` is False where a group
        has fewer particles than ``n_jets`` (those entries are 0).
        """
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_SPURIOUS_WARNING)
            jets = self._sequence.exclusive_jets_up_to(n_jets)
        jets = jets[ak.argsort(np.hypot(jets.px, jets.py), axis=1, ascending=False)]
        padded = ak.pad_none(jets, n_jets, axis=1, clip=True)
        exists = ak.to_numpy(~ak.is_none(padded, axis=1))
        fields = tuple(ak.to_numpy(ak.fill_none(getattr(padded, f), 0.0)) for f in ("px", "py", "pz", "E"))
        return (*fields, exists)


def softdrop_mass(px, py, pz, energy, counts, beta=0.0, zcut=0.1, r0=1.0):
    """Soft-drop groomed mass of each group (a fat jet's constituents), C/A reclustered."""
    sequence = fastjet.ClusterSequence(
        _to_awkward(px, py, pz, energy, counts),
        fastjet.JetDefinition(fastjet.cambridge_algorithm, RECLUSTER_R),
    )
    groomed = sequence.exclusive_jets_softdrop_grooming(njets=1, beta=beta, symmetry_cut=zcut, R0=r0)
    return ak.to_numpy(groomed.msoftdrop).astype(np.float64)


def nsubjettiness(px, py, pz, energy, counts, reclustering, n_max=3, r0=1.0):
    """Normalised N-subjettiness tau_1..tau_n_max (beta = 1) with exclusive-kT axes.

    tau_N = sum_k pT_k min_a dR(k, a) / (sum_k pT_k * R0), dR in rapidity-azimuth as in FastJet
    contrib's NormalizedMeasure(1, R0) + KT_Axes. Returns an array of shape (n_groups, n_max).
    A group with at most N particles has tau_N = 0 (every particle is its own axis).
    ``reclustering`` is the ``KtReclustering`` of the same particles.
    """
    counts = np.asarray(counts, dtype=np.int64)
    group = np.repeat(np.arange(len(counts)), counts)
    pt = np.hypot(px, py)
    rap, phi = rapidity(pz, energy), np.arctan2(py, px)
    pt_sum = np.bincount(group, pt, minlength=len(counts))
    taus = np.zeros((len(counts), n_max))
    for n in range(1, n_max + 1):
        ax_px, ax_py, ax_pz, ax_e, exists = reclustering.exclusive_jets(n)
        ax_rap, ax_phi = rapidity(ax_pz, ax_e), np.arctan2(ax_py, ax_px)
        # distance of every particle to every axis of its own group; missing axes never win
        dist = np.hypot(rap[:, None] - ax_rap[group], wrap_phi(phi[:, None] - ax_phi[group]))
        dist = np.where(exists[group], dist, np.inf).min(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            taus[:, n - 1] = np.bincount(group, pt * dist, minlength=len(counts)) / (pt_sum * r0)
    return np.nan_to_num(taus)
