"""Stitching of real Pythia samples: heavy-flavour vetoed + filtered QCD against plain inclusive QCD.

Three generator runs with the study's QCD settings (pT-hat > 200 GeV, biased with power 4, both fat
jets above 250 GeV), truth-tagged: an inclusive sample in two halves (files), a vetoed one and a
filtered one. The stitched sample (vetoed + filtered) must agree with the inclusive sample in
weighted yields per (leading fat-jet pT) x (truth-tag class) bin within their MC uncertainties
(evaluation/stitching.py: a chi2 with the full covariance of the truth-tag copies). Two wrong
stitchings must fail the same test: the veto dropped (the inclusive second half in place of the
vetoed sample, against the first half: the heavy-flavour events counted twice) and a wrong filter
efficiency (the filtered sample's cross section not scaled by it). Measured at these sizes: p = 0.39
for the correct stitching, 0.0013 with the veto dropped, 3e-12 with the wrong efficiency; two halves
of the inclusive sample against each other: p = 0.08.
"""

import numpy as np
import pytest

from multiscale.evaluation import stitching
from multiscale.evaluation.io import Prediction, read_event_files
from multiscale.evaluation.yields import yield_weights
from multiscale.generation.cli import generate_main, truth_tag_main
from multiscale.schema import PHASE_SPACES

pytestmark = pytest.mark.integration

SETTINGS = ["--process", "qcd", "--pthat-min", "200", "--pthat-bias", "4", "--fj1-ptmin", "250", "--fj2-ptmin", "250",
            "--jobs", "2"]
BRANCHES = ("is_signal", "process", "phase_space", "gen_seed", "event_id", "weight", "xsec_fb", "acceptance",
            "fj1_pt", "fj1_nbtag", "fj2_nbtag")
LUMINOSITY = 3000.0


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """{inclusive_a, inclusive_b, vetoed, filtered}: truth-tagged (test mode) event files as Predictions."""
    top = tmp_path_factory.mktemp("stitching")
    runs = {
        "inclusive": ["--events", "6000", "--events-per-file", "3000", "--seed", "31"],
        "vetoed": ["--events", "3000", "--events-per-file", "1500", "--seed", "32", "--hf-filter", "veto"],
        "filtered": ["--events", "160", "--events-per-file", "80", "--seed", "33", "--hf-filter", "require"],
    }
    for name, options in runs.items():
        assert generate_main([*SETTINGS, *options, "--outdir", str(top / name)]) == 0
    tagged = top / "tagged"
    files = sorted(top.glob("*/*.root"))
    assert truth_tag_main(["--mode", "test", "--outdir", str(tagged), *map(str, files)]) == 0

    def read(pattern):
        return read_event_files(sorted(tagged.glob(pattern)), BRANCHES)

    return {"inclusive": read("qcd_31_*.root"), "inclusive_a": read("qcd_31_0.root"),
            "inclusive_b": read("qcd_31_1.root"), "vetoed": read("qcd_nohf_32_*.root"),
            "filtered": read("qcd_hf_33_*.root")}


def stitched(*parts):
    return Prediction.concatenate(list(parts))


def test_vetoed_plus_filtered_reproduces_the_inclusive_sample(samples):
    result = stitching.compare(samples["inclusive"], stitched(samples["vetoed"], samples["filtered"]), LUMINOSITY)
    print(f"stitched vs inclusive: chi2 = {result['chi2']:.1f} / {result['ndf']}, p = {result['p_value']:.3f}; "
          f"total pull {result['total']['pull']:+.2f}; per tag class "
          f"{[round(c['pull'], 2) for c in result['per_tag_class']]}")
    assert result["p_value"] > 0.01
    # the filtered sample carries most of the >= 3-tag yield: the reason it exists
    # (the yields of one half alone are refused: it is not the whole process)
    both = stitched(samples["vetoed"], samples["filtered"])
    bins, _ = stitching.bin_of(both)
    weights = yield_weights(both, LUMINOSITY)
    three_tags = (bins >= 0) & (bins % 4 >= 2)
    from_filter = np.asarray(both.arrays["phase_space"]) == PHASE_SPACES["hf_filtered"]
    assert weights[three_tags & from_filter].sum() > weights[three_tags & ~from_filter].sum()


def test_the_comparison_fails_with_the_veto_dropped(samples):
    # the second inclusive half labelled as vetoed: the heavy-flavour events are in it and in the filtered sample
    wrong = Prediction(samples["inclusive_b"].path, dict(samples["inclusive_b"].arrays))
    wrong.arrays["phase_space"] = np.full(len(wrong), PHASE_SPACES["hf_vetoed"])
    result = stitching.compare(samples["inclusive_a"], stitched(wrong, samples["filtered"]), LUMINOSITY)
    print(f"veto dropped: chi2 = {result['chi2']:.1f} / {result['ndf']}, p = {result['p_value']:.2g}")
    assert result["p_value"] < 0.01


def test_the_comparison_fails_with_a_wrong_filter_efficiency(samples):
    # the filtered sample normalised to the inclusive cross section (no filter efficiency): 1 / eff too large
    wrong = Prediction(samples["filtered"].path, dict(samples["filtered"].arrays))
    wrong.arrays["xsec_fb"] = np.asarray(samples["inclusive"].arrays["xsec_fb"]).mean() * np.ones(len(wrong))
    result = stitching.compare(samples["inclusive"], stitched(samples["vetoed"], wrong), LUMINOSITY)
    print(f"wrong filter efficiency: chi2 = {result['chi2']:.1f} / {result['ndf']}, p = {result['p_value']:.2g}")
    assert result["p_value"] < 0.01
