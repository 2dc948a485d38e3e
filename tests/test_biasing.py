"""pT-hat biased generation: Pythia's compensating weights reproduce the unbiased spectrum, and
the written `weight` / `acceptance` branches normalise a biased file like an unbiased one."""

import json
import subprocess
import sys

import awkward as ak
import numpy as np
import pythia8mc
import pytest
import uproot

from multiscale.generation.pythia_setup import COMMON_SETTINGS, process_settings
from tests.conftest import GENERATOR, REPO

HARD_PROCESS_ONLY = ("PartonLevel:all = off", "HadronLevel:all = off")  # the pT-hat spectrum needs no shower


def pthat_sample(bias, n, seed):
    """(pT-hat, weight) of n QCD events with pTHatMin = 200 GeV, biased with power ``bias`` or not."""
    pythia = pythia8mc.Pythia("", False)
    for line in (*COMMON_SETTINGS, f"Random:seed = {seed}", *process_settings("qcd", pthat_min=200.0, pthat_bias=bias),
                 *HARD_PROCESS_ONLY):
        assert pythia.readString(line), line
    assert pythia.init()
    events = pythia.nextBatch(n, errorMode="skip")
    return np.sqrt(ak.to_numpy(events.info.pT2Hat)), ak.to_numpy(events.info.weights[:, 0])


def test_weighted_biased_spectrum_agrees_with_the_unbiased_one():
    pt, _ = pthat_sample(0.0, 6000, seed=1)
    pt_b, w_b = pthat_sample(4.0, 6000, seed=2)
    for cut in (300.0, 400.0, 600.0):
        unbiased = (pt > cut).mean()
        unbiased_error = np.sqrt(unbiased * (1 - unbiased) / len(pt))
        above = pt_b > cut
        biased = w_b[above].sum() / w_b.sum()
        # weighted fraction: binomial-like error from the weights' spread
        biased_error = np.sqrt(((w_b * (above - biased)) ** 2).sum()) / w_b.sum()
        assert abs(biased - unbiased) < 4 * np.hypot(unbiased_error, biased_error), (cut, biased, unbiased)
        # and the point of biasing: many more MC events in the tail
        assert above.sum() > 2 * (pt > cut).sum()


@pytest.mark.slow
def test_biased_file_weights_sum_to_cross_section_times_acceptance(tmp_path):
    subprocess.run(
        [sys.executable, str(GENERATOR), "--process", "qcd", "--events", "30", "--seed", "4", "--outdir", str(tmp_path),
         "--pthat-min", "200", "--pthat-bias", "4", "--fj1-ptmin", "250", "--fj2-ptmin", "250"],
        cwd=REPO, check=True, capture_output=True,
    )
    with uproot.open(tmp_path / "qcd_4_0.root") as f:
        arrays = f["Events"].arrays(["weight", "xsec_fb", "acceptance"], library="np")
    sidecar = json.loads((tmp_path / "qcd_4_0.json").read_text())
    assert np.ptp(arrays["weight"]) > 0  # weighted events
    np.testing.assert_allclose(arrays["weight"].sum(), arrays["xsec_fb"][0] * arrays["acceptance"][0], rtol=1e-9)
    assert sidecar["pthat_bias"] == 4.0 and 0 < sidecar["n_effective"] < sidecar["n_accepted"]
