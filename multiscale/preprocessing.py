"""On-the-fly jet preprocessing for weaver's ``new_variables`` (registered via ``--custom-functions``).

The seed's alignment of each jet's constituents in the (eta, phi) plane:
1. centre: the pT-weighted centroid goes to the origin;
2. rotate: the principal axis of the pT-weighted (eta, phi) distribution becomes vertical;
3. flip: the hardest constituent goes to phi' >= 0, and the half-plane eta' > 0 carries at
   least as much pT as eta' < 0.

Everything is vectorised over jagged awkward arrays (one row per jet): no per-jet Python loop.
Plain ``def`` functions on purpose: weaver registers only plain functions, not numba dispatchers.
"""

import awkward as ak
import numpy as np

from .definitions import STUDY_MASSES


def _align(deta, dphi, pt):
    """Aligned (eta', phi') of every constituent; inputs are jagged (jets x constituents)."""
    sum_pt = ak.sum(pt, axis=1)
    safe_sum = ak.where(sum_pt > 0, sum_pt, 1.0)
    x = deta - ak.sum(pt * deta, axis=1) / safe_sum
    y = dphi - ak.sum(pt * dphi, axis=1) / safe_sum

    cxx = ak.sum(pt * x * x, axis=1)
    cyy = ak.sum(pt * y * y, axis=1)
    cxy = ak.sum(pt * x * y, axis=1)
    # angle of the major axis to the eta axis; rotating by pi/2 - theta makes it vertical
    theta = 0.5 * np.arctan2(2 * cxy, cxx - cyy)
    alpha = np.pi / 2 - theta
    cos, sin = np.cos(alpha), np.sin(alpha)
    x_rot = x * cos - y * sin
    y_rot = x * sin + y * cos

    leading = ak.argmax(pt, axis=1, keepdims=True)
    leading_y = ak.fill_none(ak.firsts(y_rot[leading]), 0.0)
    y_sign = ak.where(leading_y < 0, -1.0, 1.0)
    right_heavier = ak.sum(ak.where(x_rot > 0, pt, 0.0), axis=1) >= ak.sum(ak.where(x_rot < 0, pt, 0.0), axis=1)
    x_sign = ak.where(right_heavier, 1.0, -1.0)
    return x_rot * x_sign, y_rot * y_sign


# weaver evaluates aligned_eta(...) and aligned_phi(...) of the same branches one after the other,
# each time through a new Array object over the same memory: keep the last alignment, keyed by the
# inputs' buffers, so each jet is aligned once. The inputs are held, so no other array can get
# their buffers' addresses while the entry exists.
_last_alignment: dict = {"key": None, "inputs": None, "result": None}


def _buffers_key(*arrays):
    key = []
    for array in arrays:
        form, length, buffers = ak.to_buffers(array)
        key.append((str(form), length, tuple((name, b.ctypes.data, b.nbytes) for name, b in buffers.items())))
    return tuple(key)


def _aligned(deta, dphi, pt):
    key = _buffers_key(deta, dphi, pt)
    if key != _last_alignment["key"]:
        _last_alignment.update(key=key, inputs=(deta, dphi, pt), result=_align(deta, dphi, pt))
    return _last_alignment["result"]


def aligned_eta(deta, dphi, pt):
    """eta' of each constituent after centring, rotation and flip."""
    return _aligned(deta, dphi, pt)[0]


def aligned_phi(deta, dphi, pt):
    """phi' of each constituent after centring, rotation and flip."""
    return _aligned(deta, dphi, pt)[1]


def concat_jets(first, second, max_each):
    """One token list from two jets' constituents, at most ``max_each`` of each (the hardest:
    constituents are stored pT-ordered), so the second jet is never crowded out by the first."""
    return ak.concatenate([first[:, :max_each], second[:, :max_each]], axis=1)


def fill_like(array, value):
    """A jagged array shaped like ``array`` holding ``value`` (e.g. a jet-index feature)."""
    return ak.zeros_like(array) + value


def safe_log(x, floor=1e-3):
    """log(max(x, floor)): absent objects (all zeros) stay finite."""
    return np.log(np.maximum(x, floor))


def mass_hypothesis(mH, event_id, masses=STUDY_MASSES):
    """The mass input of a parameterised network (Baldi et al., arXiv:1601.07913).

    Signal events (mH > 0) keep their true m_H; background events get one of ``masses`` (default: the
    study's), fixed per event (a hash of ``event_id``), so that every mass point sees the same background
    mixture and a rerun gives the same inputs. Pass one mass to evaluate the network at that hypothesis.
    """
    masses = np.asarray(masses, dtype=np.float64)
    mH = np.asarray(mH, dtype=np.float64)
    # Knuth's multiplicative hash spreads consecutive event ids over the mass points
    index = (np.asarray(event_id, dtype=np.uint64) * np.uint64(2654435761) >> np.uint64(8)) % np.uint64(len(masses))
    return np.where(mH > 0, mH, masses[index.astype(np.int64)]).astype(np.float32)
