"""The cost of a sample in the analysis region: N_eff at >= 3 tags per core-hour of its generation."""

import json

import numpy as np
import pytest

from multiscale.study.sample_cost import main, sample_costs
from tests.helpers import QCD, write_prediction


def write_chunk(folder, stem, weight, fj2_tags, cpu_time_s, first_event):
    """One chunk of a QCD sample: its events in folder/truth_test (fj1 with 2 tags), its sidecar in folder/generated."""
    n = len(weight)
    path = write_prediction(folder / "truth_test" / f"{stem}.root", np.zeros(n), np.full(n, QCD), weight=weight,
                            event_id=first_event + np.arange(n), fj1_nbtag=np.full(n, 2), fj2_nbtag=fj2_tags)
    (folder / "generated" / f"{stem}.json").write_text(json.dumps({"cpu_time_s": cpu_time_s}))
    return path


@pytest.fixture
def chunks(tmp_path):
    """Two chunks of one sample (pT-hat-like weights, 0-2 tags on the second jet) and 30 core-minutes each."""
    for folder in ("truth_test", "generated"):
        (tmp_path / folder).mkdir()
    rng = np.random.default_rng(3)
    weight, tags = rng.pareto(2.0, 400) + 1.0, rng.integers(0, 3, 400)
    files = [write_chunk(tmp_path, f"qcd_11_{c}", weight[200 * c:200 * (c + 1)], tags[200 * c:200 * (c + 1)],
                         1800.0, 1000 * c) for c in (0, 1)]
    return files, weight, tags


def test_effective_events_in_the_region_per_core_hour(chunks):
    files, weight, tags = chunks
    (cost,) = sample_costs(files, min_tags=3).values()
    in_region = weight[2 + tags >= 3]
    assert cost["chunks"] == 2 and cost["core_hours"] == pytest.approx(1.0)
    assert cost["effective_events"] == pytest.approx(in_region.sum() ** 2 / (in_region**2).sum())
    assert cost["effective_per_core_hour"] == pytest.approx(cost["effective_events"])
    # the whole sample (2 tags or more) holds more effective events than the >= 3-tag region
    assert sample_costs(files, min_tags=2)["qcd_11"]["effective_events"] > cost["effective_events"]


def test_a_chunk_without_its_sidecar_is_named(chunks):
    files, *_ = chunks
    files[1].parent.parent.joinpath("generated", "qcd_11_1.json").unlink()
    with pytest.raises(SystemExit, match="qcd_11_1.json: no generator sidecar"):
        main(["--min-tags", "3", *map(str, files)])
