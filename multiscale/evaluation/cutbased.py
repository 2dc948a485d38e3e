"""A classic cut-based hh -> 4b reference analysis, computed from the observers of the prediction file.

An event is selected when

1. both fat jets have a soft-drop mass inside the Higgs window (default 90-150 GeV, edges included),
2. the two fat jets together hold at least ``min_btags`` b-tagged subjets (default 3; 4 is tighter),
3. the di-fat-jet invariant mass m_jj (fj1 + fj2 four-vectors from pt, eta, phi, mass) lies in
   [lo * m_H, hi * m_H] (default [0.8, 1.1] * m_H: the window is asymmetric because FSR and
   out-of-cone radiation pull m_jj below m_H).

It does not use the classifier score; it is drawn as a single point on the ROC.
"""

from dataclasses import asdict, dataclass

import numpy as np
import vector

from .metrics import MIN_BACKGROUND_EVENTS, rejection
from .yields import expected_yields


@dataclass(frozen=True)
class CutBasedSelection:
    mH: float = 1000.0  # GeV, centre of the m_jj window
    sdmass_window: tuple = (90.0, 150.0)  # GeV, applied to both fat jets
    min_btags: int = 3  # b-tagged subjets summed over both fat jets
    mjj_window: tuple = (0.8, 1.1)  # fractions of mH

    def describe(self):
        lo, hi = self.sdmass_window
        mlo, mhi = (f * self.mH for f in self.mjj_window)
        return (
            f"{lo:g} <= m_SD(fj1), m_SD(fj2) <= {hi:g} GeV; nbtag(fj1) + nbtag(fj2) >= {self.min_btags}; "
            f"{mlo:g} <= m_jj <= {mhi:g} GeV"
        )

    def short(self):
        """One line for a plot legend."""
        lo, hi = self.sdmass_window
        mlo, mhi = (f * self.mH for f in self.mjj_window)
        return f"{lo:g} ≤ m_SD ≤ {hi:g} GeV, ≥ {self.min_btags} b-tags, {mlo:g} ≤ m_jj ≤ {mhi:g} GeV"

    def as_dict(self):
        return {**asdict(self), "definition": self.describe()}


def dijet_mass(arrays):
    """Invariant mass of the two leading fat jets (GeV)."""
    jets = [
        vector.array({f: np.asarray(arrays[f"{jet}_{f}"], dtype=np.float64) for f in ("pt", "eta", "phi", "mass")})
        for jet in ("fj1", "fj2")
    ]
    return np.asarray((jets[0] + jets[1]).mass)


def select(arrays, selection):
    """Boolean mask of the events passing ``selection``."""
    lo, hi = selection.sdmass_window
    in_higgs_window = np.ones(len(arrays["fj1_sdmass"]), dtype=bool)
    for jet in ("fj1", "fj2"):
        in_higgs_window &= (arrays[f"{jet}_sdmass"] >= lo) & (arrays[f"{jet}_sdmass"] <= hi)
    enough_btags = (arrays["fj1_nbtag"] + arrays["fj2_nbtag"]) >= selection.min_btags
    mjj = dijet_mass(arrays)
    in_mass_window = (mjj >= selection.mjj_window[0] * selection.mH) & (mjj <= selection.mjj_window[1] * selection.mH)
    return in_higgs_window & enough_btags & in_mass_window


def evaluate(prediction, selection, luminosity_fb, min_background_events=MIN_BACKGROUND_EVENTS):
    """Efficiencies, rejection and S/sqrt(B) of the selection on one sample."""
    passed = select(prediction.arrays, selection)
    is_signal = prediction.is_signal
    n_sig_pass, n_bkg_pass = int((passed & is_signal).sum()), int((passed & ~is_signal).sum())
    eff_b = n_bkg_pass / prediction.n_background
    s, b = expected_yields(prediction, luminosity_fb, passed)
    result = {
        "signal_efficiency": n_sig_pass / prediction.n_signal,
        "background_efficiency": eff_b,
        "background_rejection": rejection(eff_b),
        "n_signal_pass": n_sig_pass,
        "n_background_pass": n_bkg_pass,
        "n_signal": prediction.n_signal,
        "n_background": prediction.n_background,
        "S": s,
        "B": b,
        "significance": s / np.sqrt(b) if b > 0 else None,
    }
    # unlike the score scan, a fixed cut is always reported; flag when B rests on too few events
    if n_bkg_pass == 0:
        result["note"] = (
            f"no background MC event passes: rejection > {prediction.n_background}, S/sqrt(B) undefined"
        )
    elif n_bkg_pass < min_background_events:
        result["note"] = f"only {n_bkg_pass} background MC events pass: B and S/sqrt(B) are unreliable"
    return result
