"""Expected event yields at a luminosity, from the normalisation observers of the prediction file.

For a process p (``process`` branch) and a selection ("cut"), the expected number of events at an
integrated luminosity L (fb^-1) is

    N_p(cut) = L * sigmaA_p * eps_p(cut)

* ``sigmaA_p`` = mean of ``xsec_fb * acceptance`` over the events of p in the evaluated sample:
  the cross section (fb) times the preselection acceptance of the file each event came from.
  Averaging per event works however many files the sample had, as long as the files of one process
  sample the same phase space (they differ only by seed, so their acceptances agree within
  statistics).
* ``eps_p(cut)`` = fraction of the MC events of p in the sample that pass the cut. MC events within
  a process are unweighted (the ``weight`` branch, xsec per generated event, is not needed).

Equivalently every event i of p carries the yield weight ``L * sigmaA_p / n_p`` (n_p = MC events of
p in the sample), and a yield is a sum of weights. The result does not depend on which fraction of
the generated events ended up in the test sample.
"""

import numpy as np

from ..schema import PROCESS_CODES
from .io import PredictionError

PROCESS_NAMES = {code: name for name, code in PROCESS_CODES.items()}


def process_name(code):
    return PROCESS_NAMES.get(int(code), f"process_{int(code)}")


def process_table(prediction):
    """Per process: {name, is_signal, n_events, sigma_x_acceptance_fb}; raises on a mixed-label process."""
    arrays = prediction.arrays
    process = arrays["process"].astype(np.int64)
    sigma_acc = arrays["xsec_fb"].astype(np.float64) * arrays["acceptance"].astype(np.float64)
    is_signal = prediction.is_signal
    table = {}
    for code in np.unique(process):
        in_process = process == code
        labels = np.unique(is_signal[in_process])
        if len(labels) != 1:
            raise PredictionError(
                f"{prediction.path}: process {process_name(code)} holds both signal and background events"
            )
        table[int(code)] = {
            "name": process_name(code),
            "is_signal": bool(labels[0]),
            "n_events": int(in_process.sum()),
            "sigma_x_acceptance_fb": float(sigma_acc[in_process].mean()),
        }
    return table


def yield_weights(prediction, luminosity_fb):
    """Per-event expected yield ``L * sigmaA_p / n_p`` at ``luminosity_fb`` (fb^-1)."""
    process = prediction.arrays["process"].astype(np.int64)
    weights = np.zeros(len(prediction), dtype=np.float64)
    for code, entry in process_table(prediction).items():
        weights[process == code] = luminosity_fb * entry["sigma_x_acceptance_fb"] / entry["n_events"]
    return weights


def expected_yields(prediction, luminosity_fb, selected=None):
    """Expected signal and background events (S, B) passing the boolean mask ``selected`` (all if None)."""
    weights = yield_weights(prediction, luminosity_fb)
    if selected is not None:
        weights = np.where(selected, weights, 0.0)
    is_signal = prediction.is_signal
    return float(weights[is_signal].sum()), float(weights[~is_signal].sum())
