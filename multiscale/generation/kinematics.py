"""Four-vector helpers on numpy arrays (px, py, pz, E), built on ``vector``."""

import numpy as np
import vector


def momenta(px, py, pz, energy):
    """A ``vector`` numpy array of Lorentz vectors."""
    return vector.array({"px": px, "py": py, "pz": pz, "E": energy})


def wrap_phi(dphi):
    """Wrap angles into [-pi, pi) (numpy or awkward arrays)."""
    wrapped = (dphi + np.pi) % (2 * np.pi) - np.pi
    if isinstance(wrapped, np.ndarray):
        wrapped[wrapped >= np.pi] -= 2 * np.pi  # x % 2pi can round up to 2pi for tiny negative x
    return wrapped


def pseudorapidity(px, py, pz):
    """eta = asinh(pz / pT); +-inf for particles along the beam."""
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.arcsinh(pz / pt)


def rapidity(pz, energy):
    """y = 0.5 ln((E + pz) / (E - pz)), the coordinate FastJet measures distances in."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * np.log((energy + pz) / (energy - pz))


def delta_r(eta1, phi1, eta2, phi2):
    return np.hypot(eta1 - eta2, wrap_phi(phi1 - phi2))
