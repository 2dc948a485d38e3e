"""Expected event yields at a luminosity, from the normalisation observers of the prediction file.

For a process p (``process`` branch) the expected yield of event i of p at an integrated
luminosity L (fb^-1) is

    y_i = L * sigmaA_p * w_i / sum_{j in p} w_j

* ``sigmaA_p`` = mean of ``xsec_fb * acceptance`` over the events of p in the evaluated sample:
  the cross section (fb) times the preselection acceptance of the file each event came from.
  Averaging per event works however many files the sample had, as long as the files of one process
  sample the same phase space (they differ only by seed, so their acceptances agree within
  statistics).
* ``w_i`` = the ``weight`` branch. Weighted MC (Pythia pT-hat biasing, truth-tagged copies each
  carrying the probability of its b-tag configuration) has non-uniform weights; only their ratios
  within a process matter, the process total is fixed by sigmaA_p. For unweighted MC (uniform w)
  every event of p carries ``L * sigmaA_p / n_p`` (n_p = MC events of p in the sample).

A yield is a sum of y_i over the selected events, so N_p(cut) = L * sigmaA_p * eps_p(cut) with
eps_p the weighted fraction of p passing the cut. The result does not depend on which fraction of
the generated events ended up in the test sample.

MC statistics of a selection (:func:`mc_statistics`): the yield sum(y), its MC statistical
uncertainty sqrt(sum(y^2)), and the effective number of MC events N_eff = (sum y)^2 / sum(y^2);
1/sqrt(N_eff) is the relative MC statistical uncertainty of the yield. Within one process
y is proportional to w, so N_eff = (sum w)^2 / sum(w^2); for a mixture of processes (QCD + ttbar)
the yields y are the weights that enter B, hence N_eff is computed from them. Unweighted events of
one process give N_eff = the number of MC events.
"""

import numpy as np

from ..schema import PROCESS_CODES
from .io import PredictionError

PROCESS_NAMES = {code: name for name, code in PROCESS_CODES.items()}


def process_name(code):
    return PROCESS_NAMES.get(int(code), f"process_{int(code)}")


def mc_statistics(yields):
    """{yield, stat_uncertainty, effective_events} of the events whose yields are ``yields``:
    sum(y), sqrt(sum(y^2)) and (sum y)^2 / sum(y^2) (0 when nothing is selected)."""
    yields = np.asarray(yields, dtype=np.float64)
    total, sumw2 = float(yields.sum()), float(np.square(yields).sum())
    return {
        "yield": total,
        "stat_uncertainty": float(np.sqrt(sumw2)),
        "effective_events": total**2 / sumw2 if sumw2 > 0 else 0.0,
    }


def process_table(prediction):
    """Per process: {name, is_signal, n_events, sum_weights, effective_events, sigma_x_acceptance_fb};
    raises on a mixed-label process or a process whose weights do not sum to a positive number."""
    arrays = prediction.arrays
    process = arrays["process"].astype(np.int64)
    sigma_acc = arrays["xsec_fb"].astype(np.float64) * arrays["acceptance"].astype(np.float64)
    weight = arrays["weight"].astype(np.float64)
    is_signal = prediction.is_signal
    table = {}
    for code in np.unique(process):
        in_process = process == code
        labels = np.unique(is_signal[in_process])
        if len(labels) != 1:
            raise PredictionError(
                f"{prediction.path}: process {process_name(code)} holds both signal and background events"
            )
        sum_weights = float(weight[in_process].sum())
        if not sum_weights > 0:
            raise PredictionError(
                f"{prediction.path}: the 'weight' of process {process_name(code)} sums to {sum_weights:g}, not > 0"
            )
        table[int(code)] = {
            "name": process_name(code),
            "is_signal": bool(labels[0]),
            "n_events": int(in_process.sum()),
            "sum_weights": sum_weights,
            "effective_events": mc_statistics(weight[in_process])["effective_events"],
            "sigma_x_acceptance_fb": float(sigma_acc[in_process].mean()),
        }
    return table


def yield_weights(prediction, luminosity_fb):
    """Per-event expected yield ``L * sigmaA_p * w_i / sum_{j in p} w_j`` at ``luminosity_fb`` (fb^-1)."""
    process = prediction.arrays["process"].astype(np.int64)
    weight = prediction.arrays["weight"].astype(np.float64)
    yields = np.zeros(len(prediction), dtype=np.float64)
    for code, entry in process_table(prediction).items():
        in_process = process == code
        yields[in_process] = luminosity_fb * entry["sigma_x_acceptance_fb"] * weight[in_process] / entry["sum_weights"]
    return yields


def expected_yields(prediction, luminosity_fb, selected=None):
    """Expected signal and background events (S, B) passing the boolean mask ``selected`` (all if None)."""
    weights = yield_weights(prediction, luminosity_fb)
    if selected is not None:
        weights = np.where(selected, weights, 0.0)
    is_signal = prediction.is_signal
    return float(weights[is_signal].sum()), float(weights[~is_signal].sum())


def background_statistics(prediction, luminosity_fb, selected=None):
    """Background MC statistics of the events passing ``selected`` (all if None): see :func:`mc_statistics`."""
    weights = yield_weights(prediction, luminosity_fb)
    keep = ~prediction.is_signal if selected is None else (~prediction.is_signal & np.asarray(selected, dtype=bool))
    return mc_statistics(weights[keep])
