"""Stitching of real Pythia samples: heavy-flavour vetoed + filtered QCD against plain inclusive QCD.

Three generator runs with the study's QCD settings (pT-hat > 200 GeV, biased with power 4, both fat
jets above 250 GeV) but without multiparton interactions (5x cheaper tries; the stitching does not depend
on them), truth-tagged: an inclusive sample in two halves (files), a vetoed one and a filtered one. The
stitched sample (vetoed + filtered) must agree with the inclusive sample in weighted yields per (leading
fat-jet pT) x (truth-tag class) bin within their MC uncertainties (evaluation/stitching.py), by two
statistics: the chi2 with the full covariance of the truth-tag copies, and the fit of the filtered part's
scale mu (one degree of freedom, aimed at its normalisation); a stitching passes when both p-values,
Bonferroni-corrected (x 2), are above 0.01. Two wrong stitchings must fail: the veto dropped (the
inclusive second half in place of the vetoed sample, against the first half: the heavy-flavour events
counted twice) and a wrong filter efficiency (the filtered sample's cross section not scaled by it).

Measured at these sizes (the labelling of btagging.py, one hadron per subjet; 161 s of CPU in all):
correct stitching chi2 p = 0.19, mu = 0.37 +- 0.30 (p = 0.037); veto dropped chi2 p = 0.031,
mu = 0.00 +- 0.32 (p = 0.0019); wrong efficiency chi2 p ~ 1e-30. A 10% error in the filtered
normalisation is out of reach: mu's error is 0.30, because the filtered part rests on ~100 effective MC
events (320 filtered events, pT-hat weights) and the inclusive sample's >= 3-tag yield on ~13; deciding
10% at p < 0.01 with 80% power needs an error of 0.029, ~110x these events on both sides
(``test_a_ten_percent_error_in_the_filtered_normalisation``, an expected failure;
``python -m multiscale.study.filter_efficiency`` checks the normalisation of a study's samples from their
sidecars instead).
"""

import numpy as np
import pytest

from multiscale.evaluation import stitching
from multiscale.evaluation.io import Prediction, read_event_files
from multiscale.evaluation.yields import yield_weights
from multiscale.generation.cli import generate_main, truth_tag_main
from multiscale.schema import PHASE_SPACES

pytestmark = pytest.mark.integration

# without multiparton interactions: a tried event's parton level costs 5x less (1.3 against 7 ms), and the stitching
# (which events each sample keeps, and each one's cross section) does not depend on them
SETTINGS = ["--process", "qcd", "--pthat-min", "200", "--pthat-bias", "4", "--fj1-ptmin", "250", "--fj2-ptmin", "250",
            "--pythia-setting", "PartonLevel:MPI = off", "--jobs", "2"]
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
        "filtered": ["--events", "320", "--events-per-file", "160", "--seed", "33", "--hf-filter", "require"],
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


def combined_p(result):
    """The smaller p-value of the chi2 and of the filtered scale, Bonferroni-corrected for the two."""
    return min(1.0, 2 * min(result["p_value"], result["filtered_scale"]["p_value"]))


def report(what, result):
    scale = result["filtered_scale"]
    print(f"{what}: chi2 = {result['chi2']:.1f} / {result['ndf']}, p = {result['p_value']:.2g}; filtered scale "
          f"mu = {scale['mu']:.2f} +- {scale['error']:.2f}, p = {scale['p_value']:.2g}; per tag class pulls "
          f"{[round(c['pull'], 2) for c in result['per_tag_class']]}")


def test_vetoed_plus_filtered_reproduces_the_inclusive_sample(samples):
    result = stitching.compare(samples["inclusive"], stitched(samples["vetoed"], samples["filtered"]), LUMINOSITY)
    report("stitched vs inclusive", result)
    assert combined_p(result) > 0.01
    # the filtered sample carries most of the 4-tag yield: the reason it exists
    # (the yields of one half alone are refused: it is not the whole process)
    both = stitched(samples["vetoed"], samples["filtered"])
    bins, _ = stitching.bin_of(both)
    weights = yield_weights(both, LUMINOSITY)
    four_tags = (bins >= 0) & (bins % 4 == 3)
    from_filter = np.asarray(both.arrays["phase_space"]) == PHASE_SPACES["hf_filtered"]
    assert weights[four_tags & from_filter].sum() > weights[four_tags & ~from_filter].sum()


def test_the_comparison_fails_with_the_veto_dropped(samples):
    # the second inclusive half labelled as vetoed: the heavy-flavour events are in it and in the filtered sample
    wrong = Prediction(samples["inclusive_b"].path, dict(samples["inclusive_b"].arrays))
    wrong.arrays["phase_space"] = np.full(len(wrong), PHASE_SPACES["hf_vetoed"])
    result = stitching.compare(samples["inclusive_a"], stitched(wrong, samples["filtered"]), LUMINOSITY)
    report("veto dropped", result)
    assert combined_p(result) < 0.01


def test_the_comparison_fails_with_a_wrong_filter_efficiency(samples):
    # the filtered sample normalised to the inclusive cross section (no filter efficiency): 1 / eff too large
    wrong = Prediction(samples["filtered"].path, dict(samples["filtered"].arrays))
    wrong.arrays["xsec_fb"] = np.asarray(samples["inclusive"].arrays["xsec_fb"]).mean() * np.ones(len(wrong))
    result = stitching.compare(samples["inclusive"], stitched(samples["vetoed"], wrong), LUMINOSITY)
    report("wrong filter efficiency", result)
    assert combined_p(result) < 0.01


def with_filtered_xsec(samples, factor):
    """The filtered sample with its cross section (its normalisation in the yields) times ``factor``."""
    wrong = Prediction(samples["filtered"].path, dict(samples["filtered"].arrays))
    wrong.arrays["xsec_fb"] = np.asarray(samples["filtered"].arrays["xsec_fb"]) * factor
    return wrong



@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="mu's error at these sizes is ~0.3: a 10% error needs ~110x the events")
def test_a_ten_percent_error_in_the_filtered_normalisation(samples):
    """The goal the samples are too small for; strict: it fails loudly once they are large enough."""
    result = stitching.compare(samples["inclusive"], stitched(samples["vetoed"], with_filtered_xsec(samples, 1.1)),
                               LUMINOSITY)
    report("filtered cross section x 1.1", result)
    assert combined_p(result) < 0.01
