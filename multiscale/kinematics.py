"""Kinematic helpers shared by the generator and the on-the-fly preprocessing: azimuthal
wrapping, (pseudo)rapidity, Delta R, and four-vectors (px, py, pz, E) built on ``vector``."""

import numpy as np
import vector


def momenta(px, py, pz, energy):
    """A ``vector`` numpy array of Lorentz vectors."""
    return vector.array({"px": px, "py": py, "pz": pz, "E": energy})


def wrap_phi(dphi):
    """Wrap angles into [-pi, pi) (numpy or awkward arrays)."""
    wrapped = (dphi + np.pi) % (2 * np.pi) - np.pi
    return np.where(wrapped >= np.pi, wrapped - 2 * np.pi, wrapped)  # x % 2pi can round up to 2pi for tiny negative x


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
