"""Stitching of real Pythia samples: heavy-flavour vetoed + filtered QCD against plain inclusive QCD.

Three generator runs, truth-tagged: an inclusive sample in two halves (files), a vetoed one and a filtered
one, with the study's cuts (pT-hat > 200 GeV, both fat jets above 250 GeV) but a QCD mix in which heavy
flavour is common. The study's QCD has b quarks in both jets in 0.9% of its cross section, so a test that
decides a 10% error in the filtered normalisation would need ~110x the events of a CI test (measured); the
stitching (which events each sample keeps, the cross section and weights each carries) does not depend on
the fraction, so the test takes gg -> qqbar (u, d, s) with gg, qqbar -> bbbar, where it is 26%. Without
multiparton interactions (5x cheaper tries), pT-hat bias power 2 (weights as the study's, less spread).

* **Yields:** the stitched sample (vetoed + filtered) must agree with the inclusive sample in weighted yields
  per (leading fat-jet pT) x (truth-tag class) bin within their MC uncertainties (evaluation/stitching.py),
  by two statistics: the chi2 with the full covariance of the truth-tag copies, and the fit of the filtered
  part's scale mu (aimed at its normalisation); it passes when both p-values, Bonferroni-corrected (x 2), are
  above 0.01. Two wrong stitchings must fail: the veto dropped (the inclusive second half in place of the
  vetoed sample: the heavy-flavour events counted twice) and a wrong filter efficiency.
* **Normalisation:** the filtered runs' cross section against the one the veto runs measure with the same
  filter on their own tries (study/filter_efficiency.py, from the sidecars); a 10% error injected in the
  filtered normalisation must fail at p < 0.01.

Measured at these sizes (``./tests/run.sh -s -n 0 tests/test_stitching.py``): see docs/generation.md.
"""

import json

import numpy as np
import pytest
import uproot

from multiscale.evaluation import stitching
from multiscale.evaluation.io import Prediction, read_event_files
from multiscale.evaluation.yields import yield_weights
from multiscale.generation.cli import generate_main, truth_tag_main
from multiscale.schema import PHASE_SPACES
from multiscale.study import filter_efficiency

pytestmark = pytest.mark.integration

HEAVY_FLAVOUR_COMMON = ["HardQCD:all = off", "HardQCD:gg2qqbar = on", "HardQCD:hardbbbar = on"]
SETTINGS = ["--process", "qcd", "--pthat-min", "200", "--pthat-bias", "2", "--fj1-ptmin", "250", "--fj2-ptmin", "250",
            "--jobs", "2", *(option for setting in ["PartonLevel:MPI = off", *HEAVY_FLAVOUR_COMMON]
                             for option in ("--pythia-setting", setting))]
BRANCHES = ("is_signal", "process", "phase_space", "gen_seed", "event_id", "weight", "xsec_fb", "acceptance",
            "fj1_pt", "fj1_nbtag", "fj2_nbtag")
LUMINOSITY = 3000.0


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """{inclusive, inclusive_a, inclusive_b, vetoed, filtered}: truth-tagged (test mode) event files as
    Predictions; ``sidecars``: the generator's per-chunk sidecars of the three runs; ``tagged``: their folder."""
    top = tmp_path_factory.mktemp("stitching")
    runs = {  # the veto runs' tries set the normalisation check's error (2.5%), the inclusive sample mu's
        "inclusive": ["--events", "3000", "--events-per-file", "1500", "--seed", "31"],
        "vetoed": ["--events", "4000", "--events-per-file", "2000", "--seed", "32", "--hf-filter", "veto"],
        "filtered": ["--events", "600", "--events-per-file", "300", "--seed", "33", "--hf-filter", "require"],
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
            "filtered": read("qcd_hf_33_*.root"), "sidecars": [path.with_suffix(".json") for path in files],
            "tagged": tagged}


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
                   reason="mu's error at these sizes is ~0.06: a 10% error in the yields needs ~5x the inclusive events")
def test_a_ten_percent_error_in_the_filtered_yields(samples):
    """The yields' own sensitivity, which these sizes do not reach (the sidecars' check below does); strict: it
    fails loudly once the samples are large enough."""
    result = stitching.compare(samples["inclusive"], stitched(samples["vetoed"], with_filtered_xsec(samples, 1.1)),
                               LUMINOSITY)
    report("filtered cross section x 1.1", result)
    assert combined_p(result) < 0.01


def test_the_yields_use_the_cross_section_the_normalisation_check_reads(samples):
    """Each truth-tagged file (what the yields read) carries its chunk's sigmaGen (what filter_efficiency reads)."""
    for sidecar in samples["sidecars"]:
        with uproot.open(samples["tagged"] / sidecar.with_suffix(".root").name) as tagged:
            xsec = tagged["Events"]["xsec_fb"].array(library="np")
        assert len(xsec) > 0
        np.testing.assert_allclose(xsec, json.loads(sidecar.read_text())["sigma_gen_fb"], rtol=1e-6, err_msg=str(sidecar))


def normalisation_check(samples, factor=1.0):
    """filter_efficiency.check on the runs' sidecars, the filtered runs' cross section times ``factor``."""
    runs = filter_efficiency.read_sidecars(samples["sidecars"])
    runs["require"] = [{**chunk, "sigma_gen_fb": chunk["sigma_gen_fb"] * factor,
                        "sigma_gen_error_fb": chunk["sigma_gen_error_fb"] * factor} for chunk in runs["require"]]
    result = filter_efficiency.check(runs)
    print(f"filtered normalisation x {factor}: ratio {result['ratio']:.3f} +- {result['ratio_error']:.3f}, "
          f"p = {result['p_value']:.2g}")
    return result


def test_the_filtered_normalisation_agrees_with_the_veto_runs(samples):
    result = normalisation_check(samples)
    assert result["p_value"] > 0.01
    assert result["ratio_error"] < 0.029  # 10% at p < 0.01 with 80% power


def test_a_ten_percent_error_in_the_filtered_normalisation_is_found(samples):
    assert normalisation_check(samples, 1.1)["p_value"] < 0.01
    assert normalisation_check(samples, 1 / 1.1)["p_value"] < 0.01
