"""Truth-based b-tagging with random efficiencies.

Labels as taggers make them: each weakly decaying B hadron (the last B hadron of its decay chain)
labels at most one jet, the nearest one within dR < 0.3 (exclusive hadron-cone labelling, as
ATLAS's; ghost association also gives a hadron to one jet). A jet is b if it holds such a hadron,
else c if it holds a C hadron, else light. Only hadrons with pT > 5 GeV count. The rule this
replaces gave a hadron to every jet within 0.3: the two subjets of a fat jet that holds one b
hadron were both b, and truth tagging tagged them independently, so one hadron made most of the
QCD background at >= 2 tags (docs/results.md).

Two subjets of one fat jet that overlap are one object to a tagger: their tracks and secondary
vertices are shared. The rule is ATLAS's for variable-radius track jets, R(pT) = 30 GeV / pT
clipped to [0.02, 0.4]; two subjets overlap when dR < min(R1, R2). ATLAS rejects such events;
here the softer subjet of an overlapping pair is untaggable (label ``FLAVOUR_UNTAGGABLE``, tag
probability 0) and its hadrons go to the harder one, so the event is kept (the networks see every
event) and the pair gives at most one tag, which is what removing it would do to the tag count.

Each jet is then tagged with the probability of its label (77% / 15% / 1% by default), so
backgrounds fake b-tags as in a real analysis. Generation, truth tagging and the b-tag weight
variations all go through :meth:`TagEfficiencies.of`, so they treat the labels alike.
"""

from dataclasses import dataclass

import numpy as np

from multiscale.kinematics import delta_r, pseudorapidity

MATCH_DR = 0.3
HADRON_PT_MIN = 5.0
# ATLAS variable-radius track jets: R = VR_RHO / pT in [VR_R_MIN, VR_R_MAX]; the overlap rule's radius
VR_RHO, VR_R_MIN, VR_R_MAX = 30.0, 0.02, 0.4
# recorded in every sample's settings: files labelled by another rule are not mixed with these
LABELLING = "nearest-jet-dR0.3+vr-overlap"
# the b-tagging nuisance parameter of the limits: the b-jet efficiency moved by +-5% (relative), the
# weight of each event (or truth-tag copy) recomputed for it, in signal and background alike
BTAG_EFF_RELATIVE_UNCERTAINTY = 0.05

FLAVOUR_LIGHT, FLAVOUR_C, FLAVOUR_B = 0, 4, 5
FLAVOUR_UNTAGGABLE = -1  # the softer subjet of an overlapping pair: never tagged


@dataclass(frozen=True)
class TagEfficiencies:
    b: float = 0.77
    c: float = 0.15
    light: float = 0.01

    def of(self, flavour):
        """Tag probability for an array of flavour labels (0 for ``FLAVOUR_UNTAGGABLE``)."""
        return np.select([flavour == FLAVOUR_B, flavour == FLAVOUR_C, flavour == FLAVOUR_UNTAGGABLE],
                         [self.b, self.c, 0.0], self.light)

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


def variable_radius(pt):
    """The ATLAS variable-radius track-jet radius of jets of transverse momentum ``pt`` (GeV)."""
    with np.errstate(divide="ignore"):
        return np.clip(VR_RHO / np.asarray(pt, dtype=np.float64), VR_R_MIN, VR_R_MAX)


def overlapped_subjets(pt, eta, phi, exists):
    """(n, 2k) bool: the softer subjet of each fat jet's pair (columns 2i, 2i+1) that overlaps the harder
    one (dR < the smaller variable radius); absent subjets never overlap."""
    n, width = pt.shape
    pt, eta, phi, exists = (np.asarray(a).reshape(n, width // 2, 2) for a in (pt, eta, phi, exists))
    dr = delta_r(eta[..., 0], phi[..., 0], eta[..., 1], phi[..., 1])
    overlap = exists.all(axis=2) & (dr < variable_radius(pt).min(axis=2))
    softer = np.stack([pt[..., 0] < pt[..., 1], pt[..., 0] >= pt[..., 1]], axis=2)
    return (overlap[..., None] & softer).reshape(n, width)


def nearest_jet(hadrons, jet_eta, jet_phi, taggable):
    """Per hadron, the slot of the nearest taggable jet of its event within ``MATCH_DR``, or -1."""
    dr = delta_r(hadrons.eta[:, None], hadrons.phi[:, None], jet_eta[hadrons.event], jet_phi[hadrons.event])
    dr = np.where(taggable[hadrons.event], dr, np.inf)  # (n_hadrons, n_slots)
    slot = np.argmin(dr, axis=1) if dr.size else np.zeros(len(dr), dtype=np.int64)
    matched = dr[np.arange(len(dr)), slot] < MATCH_DR if dr.size else np.zeros(len(dr), dtype=bool)
    return np.where(matched, slot, -1)


def jet_flavour(jet_eta, jet_phi, b_hadrons, c_hadrons, taggable=None):
    """Flavour labels of jets given as (event x slot) numpy arrays: each hadron labels only its nearest
    ``taggable`` jet (default: every slot) within ``MATCH_DR``; b overrides c."""
    taggable = np.ones(jet_eta.shape, dtype=bool) if taggable is None else np.asarray(taggable, dtype=bool)
    flavour = np.zeros(jet_eta.shape, dtype=np.int8)
    for code, hadrons in ((FLAVOUR_C, c_hadrons), (FLAVOUR_B, b_hadrons)):  # b overrides c
        slot = nearest_jet(hadrons, jet_eta, jet_phi, taggable)
        hit = slot >= 0
        flavour[hadrons.event[hit], slot[hit]] = code
    return flavour


def label_jets(pt, eta, phi, exists, b_hadrons, c_hadrons, n_subjets):
    """Labels of (event x slot) jets whose first ``n_subjets`` slots are the subjets of the fat jets, in
    pairs: the softer subjet of an overlapping pair is ``FLAVOUR_UNTAGGABLE`` and its hadrons go to the
    nearest taggable jet; absent jets get no hadron (label light, and they never tag)."""
    overlapped = np.zeros(pt.shape, dtype=bool)
    overlapped[:, :n_subjets] = overlapped_subjets(pt[:, :n_subjets], eta[:, :n_subjets], phi[:, :n_subjets],
                                                   exists[:, :n_subjets])
    flavour = jet_flavour(eta, phi, b_hadrons, c_hadrons, taggable=exists & ~overlapped)
    flavour[overlapped] = FLAVOUR_UNTAGGABLE
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
