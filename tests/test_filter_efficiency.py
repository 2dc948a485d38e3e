"""study/filter_efficiency.py: the filtered cross section measured directly and from the veto runs' counts."""

import json

import numpy as np
import pytest

from multiscale.study.filter_efficiency import check, main, read_sidecars, vetoed_fraction

INCLUSIVE_FB = 7.0e7
FRACTION = 0.009  # of the tried weight in the filtered phase space


def sidecar(mode, seed, chunk, tries=40_000, sigma_error=0.02, filtered_xsec_factor=1.0, weight2=True):
    """A chunk's sidecar as the generator writes it, its counts drawn with the filter's true fraction."""
    rng = np.random.default_rng(seed * 100 + chunk)
    weights = rng.lognormal(0.0, 0.7, tries)
    passed = rng.uniform(size=tries) < FRACTION
    f = weights[passed].sum() / weights.sum()
    kept = f if mode == "require" else 1 - f
    sigma = INCLUSIVE_FB * kept * (filtered_xsec_factor if mode == "require" else 1.0)
    counts = {"mode": mode, "n_tried": tries, "n_passed": int(passed.sum()), "weight_tried": float(weights.sum()),
              "weight_passed": float(weights[passed].sum())}
    if weight2:
        counts |= {"weight2_tried": float((weights**2).sum()), "weight2_passed": float((weights[passed] ** 2).sum())}
    return {"sigma_gen_fb": sigma, "sigma_gen_error_fb": sigma * sigma_error, "hf_filter": counts}


def write(tmp_path, **options):
    paths = []
    for mode, seed in (("require", 13), ("veto", 11)):
        for chunk in range(3):
            path = tmp_path / f"qcd_{'hf' if mode == 'require' else 'nohf'}_{seed}_{chunk}.json"
            path.write_text(json.dumps(sidecar(mode, seed, chunk, **options)))
            paths.append(path)
    (tmp_path / "hh4b_mH1000_2_0.json").write_text(json.dumps({"sigma_gen_fb": 1.0}))  # no filter: left out
    return [*paths, tmp_path / "hh4b_mH1000_2_0.json"]


def test_consistent_samples_agree_and_a_missing_filter_efficiency_is_found(tmp_path):
    for name in ("right", "wrong"):
        (tmp_path / name).mkdir()
    right = check(read_sidecars(write(tmp_path / "right")))
    assert right["p_value"] > 0.01 and right["ratio"] == pytest.approx(1.0, abs=4 * right["ratio_error"])
    # the filtered sample normalised to the inclusive cross section: 1 / FRACTION too large
    wrong = check(read_sidecars(write(tmp_path / "wrong", filtered_xsec_factor=1 / FRACTION)))
    assert wrong["p_value"] < 1e-6 and wrong["ratio"] > 50


def test_the_weighted_error_exceeds_the_counting_error_for_spread_weights():
    chunks = [sidecar("veto", 11, c) for c in range(3)]
    unweighted = [{**c, "hf_filter": {k: v for k, v in c["hf_filter"].items() if not k.startswith("weight2")}}
                  for c in chunks]
    f, weighted_error, tries, _ = vetoed_fraction(chunks)
    _, counting_error, _, _ = vetoed_fraction(unweighted)
    assert tries == 120_000 and 0.007 < f < 0.011
    assert weighted_error > 1.1 * counting_error  # log-normal weights of spread 0.7: N_eff < N


def test_the_command_prints_both_measurements_and_names_what_is_missing(tmp_path, capsys):
    paths = write(tmp_path)
    assert main(list(map(str, paths))) == 0
    out = capsys.readouterr().out
    assert "direct (3 require chunks, 120000 tries)" in out and "from the veto runs (3 chunks" in out
    with pytest.raises(SystemExit, match="--hf-filter veto"):
        main([str(p) for p in paths if "nohf" not in p.name])
