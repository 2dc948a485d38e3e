"""Truth-based b-tagging with random efficiencies.

A jet is labelled b if a weakly decaying B hadron (the last B hadron of its decay chain) lies
within dR < 0.3 of it, else c if such a C hadron does, else light. It is then tagged with the
probability of its label (77% / 15% / 1% by default), so backgrounds fake b-tags as in a real
analysis. Only hadrons with pT > 5 GeV count, as in ATLAS/CMS hadron-cone labelling.
"""

from dataclasses import dataclass

import numpy as np

from multiscale.kinematics import delta_r, pseudorapidity

MATCH_DR = 0.3
HADRON_PT_MIN = 5.0
# the b-tagging nuisance parameter of the limits: the b-jet efficiency moved by +-5% (relative), the
# weight of each event (or truth-tag copy) recomputed for it, in signal and background alike
BTAG_EFF_RELATIVE_UNCERTAINTY = 0.05

FLAVOUR_LIGHT, FLAVOUR_C, FLAVOUR_B = 0, 4, 5


@dataclass(frozen=True)
class TagEfficiencies:
    b: float = 0.77
    c: float = 0.15
    light: float = 0.01

    def of(self, flavour):
        """Tag probability for an array of flavour labels."""
        return np.select([flavour == FLAVOUR_B, flavour == FLAVOUR_C], [self.b, self.c], self.light)

    def with_b_moved(self, sigmas, relative=BTAG_EFF_RELATIVE_UNCERTAINTY):
        """The same working point with the b efficiency moved by ``sigmas`` times ``relative``."""
        return TagEfficiencies(float(np.clip(self.b * (1.0 + sigmas * relative), 0.0, 1.0)), self.c, self.light)


def heavy_flavour(pid):
    """5 for B hadrons, 4 for C hadrons, 0 otherwise (quarkonia count as 0: no weak decay)."""
    pid = np.abs(np.asarray(pid))
    code = pid % 10000  # drops the excitation digits of e.g. 10511
    q1, q2, q3 = (code // 1000) % 10, (code // 100) % 10, (code // 10) % 10
    is_hadron = (pid < 1_000_000) & (code > 100) & (q3 > 0)  # q3 == 0: diquark
    is_baryon = q1 > 0
    # the heaviest quark is the first digit of the quark content (q1 for baryons, q2 for mesons)
    heaviest = np.where(is_baryon, q1, q2)
    quarkonium = ~is_baryon & (q2 == q3)
    flavour = np.where(is_hadron & ~quarkonium & np.isin(heaviest, (4, 5)), heaviest, 0)
    return flavour.astype(np.int8)


def weakly_decaying_hadrons(batch, flavour_code):
    """Flat indices of the hadrons of ``flavour_code`` with no hadron of that flavour as daughter.

    A hadron's decay products point back to it through ``mother1`` (also for B* -> B gamma and
    B0 <-> B0bar mixing), so a hadron is last in its chain when no hadron of the same flavour
    names it as mother.
    """
    flavour = heavy_flavour(batch.pid)
    candidates = np.flatnonzero(flavour == flavour_code)
    mothers_of_same = batch.mother1[candidates]
    last = ~np.isin(candidates, mothers_of_same)
    return candidates[last]


@dataclass
class Hadrons:
    """Labelling hadrons of the selected events: flat arrays with the event's position."""

    event: np.ndarray  # position of the hadron's event among the selected events
    eta: np.ndarray
    phi: np.ndarray


def select_hadrons(batch, flavour_code, events):
    """Weakly decaying hadrons of ``flavour_code`` with pT > 5 GeV in ``events`` (sorted indices)."""
    index = weakly_decaying_hadrons(batch, flavour_code)
    px, py, pz = batch.px[index], batch.py[index], batch.pz[index]
    event = batch.event_of[index]
    keep = (np.hypot(px, py) > HADRON_PT_MIN) & np.isin(event, events)
    return Hadrons(
        event=np.searchsorted(events, event[keep]),
        eta=pseudorapidity(px[keep], py[keep], pz[keep]),
        phi=np.arctan2(py[keep], px[keep]),
    )


def jet_flavour(jet_eta, jet_phi, b_hadrons, c_hadrons):
    """Hadron-cone flavour label of jets given as (event x slot) numpy arrays."""
    flavour = np.zeros(jet_eta.shape, dtype=np.int8)
    for code, hadrons in ((FLAVOUR_C, c_hadrons), (FLAVOUR_B, b_hadrons)):  # b overrides c
        # distance of every hadron to every jet slot of its own event: (n_hadrons, n_slots)
        dr = delta_r(hadrons.eta[:, None], hadrons.phi[:, None], jet_eta[hadrons.event], jet_phi[hadrons.event])
        hits = np.zeros(jet_eta.shape, dtype=np.int64)
        np.add.at(hits, hadrons.event, dr < MATCH_DR)
        flavour[hits > 0] = code
    return flavour


def tag_probability(flavour, exists, tags, efficiencies):
    """Per row, the probability of the tag decisions ``tags`` of the existing jets (absent jets never tag)."""
    p = np.where(exists, efficiencies.of(flavour), 0.0)
    return np.where(tags, p, 1.0 - p).prod(axis=1)


def btag_weight_variations(flavour, exists, tags, efficiencies):
    """(up, down): the factor by which each row's weight changes when the b efficiency moves by +-1
    sigma (``BTAG_EFF_RELATIVE_UNCERTAINTY``), for the tag decisions ``tags`` that were drawn."""
    nominal = tag_probability(flavour, exists, tags, efficiencies)
    return tuple(np.divide(tag_probability(flavour, exists, tags, efficiencies.with_b_moved(s)), nominal,
                           out=np.ones_like(nominal), where=nominal > 0) for s in (+1, -1))


def apply_tagging(flavour, exists, efficiencies, rng):
    """Random b-tag decisions; one uniform number is drawn per slot whether or not it exists,
    so the random stream does not depend on which jets were found."""
    draws = rng.random(flavour.shape)
    return exists & (draws < efficiencies.of(flavour))
