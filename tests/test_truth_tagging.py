"""Truth tagging (multiscale/generation/truth_tagging.py): exact class probabilities, weights that
sum to the event's weight, and weighted yields that agree with random tagging on a large toy."""

import awkward as ak
import numpy as np
import pytest
import uproot

from multiscale.generation.btagging import FLAVOUR_B, FLAVOUR_C, FLAVOUR_LIGHT, TagEfficiencies, apply_tagging
from multiscale.generation.truth_tagging import (
    FLAVOUR_BRANCHES, SUBJET_SLOTS, class_probabilities, configuration_probabilities, expand, truth_tag_file,
)
from multiscale.schema import N_OBJECTS

EFF = TagEfficiencies()


def toy_columns(n, seed=0, absent_fraction=0.1):
    rng = np.random.default_rng(seed)
    flavour = rng.choice([FLAVOUR_LIGHT, FLAVOUR_C, FLAVOUR_B], size=(n, 4), p=[0.6, 0.2, 0.2])
    mask = np.ones((n, N_OBJECTS), dtype=np.float32)
    mask[:, SUBJET_SLOTS] = rng.random((n, 4)) > absent_fraction
    columns = {name: flavour[:, j].astype(np.int32) for j, name in enumerate(FLAVOUR_BRANCHES)}
    columns["obj_mask"] = ak.from_regular(mask, axis=1)
    columns["obj_btag"] = ak.from_regular(np.zeros((n, N_OBJECTS), dtype=np.float32), axis=1)
    columns["obj_pt"] = ak.from_regular(rng.random((n, N_OBJECTS)).astype(np.float32), axis=1)
    columns["weight"] = rng.uniform(0.5, 2.0, n)
    columns["event_id"] = np.arange(n)
    return columns, flavour, mask[:, SUBJET_SLOTS] > 0


def test_class_probabilities_are_exact_for_one_event():
    # subjets b, b, c, light: P(4 tags) = .77 * .77 * .15 * .01
    flavour = np.array([[FLAVOUR_B, FLAVOUR_B, FLAVOUR_C, FLAVOUR_LIGHT]])
    classes = class_probabilities(configuration_probabilities(flavour, np.ones((1, 4), bool), EFF))[0]
    p = np.array([0.77, 0.77, 0.15, 0.01])
    p4 = p.prod()
    p3 = sum(np.prod(np.where(np.arange(4) == j, 1 - p, p)) for j in range(4))
    p2 = sum(np.prod(np.where((np.arange(4) == j) | (np.arange(4) == k), 1 - p, p))
             for j in range(4) for k in range(j + 1, 4))
    np.testing.assert_allclose(classes, [1 - p2 - p3 - p4, p2, p3, p4], rtol=1e-12)


def test_absent_subjets_never_tag():
    flavour = np.full((1, 4), FLAVOUR_B)
    exists = np.array([[True, True, True, False]])
    classes = class_probabilities(configuration_probabilities(flavour, exists, EFF))[0]
    assert classes[3] == 0.0 and classes.sum() == pytest.approx(1.0)


def test_test_mode_weights_sum_to_the_event_weight_and_tags_follow_the_class():
    columns, _, _ = toy_columns(2000)
    out = expand(columns, "test", EFF, np.random.default_rng(1))
    summed = np.bincount(out["event_id"], weights=out["weight"], minlength=2000)
    np.testing.assert_allclose(summed, columns["weight"], rtol=1e-12)
    nbtag = out["fj1_nbtag"] + out["fj2_nbtag"]
    assert np.all(np.where(out["tag_class"] == 0, nbtag <= 1, nbtag == out["tag_class"] + 1))
    btag = ak.to_numpy(ak.to_regular(out["obj_btag"], axis=1))
    np.testing.assert_array_equal(btag[:, SUBJET_SLOTS].sum(axis=1), nbtag)
    np.testing.assert_array_equal(btag[:, 0], btag[:, 2] * btag[:, 3])  # fj1 tagged = both subjets
    np.testing.assert_array_equal(btag[:, 6], btag[:, 0] * btag[:, 1])  # H candidate = both fat jets
    mask = ak.to_numpy(ak.to_regular(out["obj_mask"], axis=1))
    assert np.all(btag[mask == 0] == 0)


@pytest.mark.parametrize("mode", ["test", "train"])
def test_weighted_yields_agree_with_random_tagging(mode):
    n = 200_000
    columns, flavour, exists = toy_columns(n, seed=2)
    out = expand(columns, mode, EFF, np.random.default_rng(3))
    truth_nbtag = out["fj1_nbtag"] + out["fj2_nbtag"]
    random_nbtag = apply_tagging(flavour, exists, EFF, np.random.default_rng(4)).sum(axis=1)
    for required in (2, 3, 4):
        truth = out["weight"][truth_nbtag >= required].sum()
        passed = random_nbtag >= required
        random_yield = columns["weight"][passed].sum()
        error = np.sqrt((columns["weight"][passed] ** 2).sum() + (out["weight"][truth_nbtag >= required] ** 2).sum())
        assert abs(truth - random_yield) < 4 * error, (required, truth, random_yield, error)
    if mode == "train":
        assert len(out["weight"]) < n  # unweighted: events kept with probability w / w_ref
        assert np.all(out["tag_weight"] == 1.0)
        # the training copies follow the physical tag distribution (weaver cannot weight the loss): the
        # unweighted fraction at each tag requirement is the weighted fraction of the test-mode copies
        test = expand(columns, "test", EFF, np.random.default_rng(5))
        test_nbtag = test["fj1_nbtag"] + test["fj2_nbtag"]
        for required in (2, 3, 4):
            expected = test["weight"][test_nbtag >= required].sum() / test["weight"].sum()
            observed = (truth_nbtag >= required).mean()
            sigma = np.sqrt(expected * (1 - expected) / len(truth_nbtag)) + 0.01 * expected
            assert abs(observed - expected) < 5 * sigma, (required, observed, expected)


def test_unweighting_keeps_the_weighted_distribution():
    """A pT-hat biased toy: weights fall as pT^-4 over a flat pT; the unweighted events (each now
    carrying about the same weight) must follow the weighted spectrum, not the flat one."""
    from multiscale.generation.truth_tagging import UNWEIGHT_LOSS, unweight, unweighting_reference

    rng = np.random.default_rng(5)
    pt = rng.uniform(250, 1000, 400_000)
    weight = (pt / 250) ** -4
    reference = unweighting_reference(weight)
    kept, new_weight = unweight(weight, rng, reference)
    weighted_mean = np.average(pt, weights=weight)
    assert abs(pt[kept].mean() - weighted_mean) < 0.02 * weighted_mean  # unweighted now
    assert abs(np.average(pt[kept], weights=new_weight) - weighted_mean) < 0.01 * weighted_mean
    assert new_weight.sum() == pytest.approx(weight.sum(), rel=0.02)  # the cross section is kept
    # the reference caps exactly the allowed share of the weight, and no smaller one would do
    def capped(ref):
        return np.maximum(weight - ref, 0).sum() / weight.sum()

    assert capped(reference) == pytest.approx(UNWEIGHT_LOSS, rel=1e-6)
    assert capped(reference * 0.999) > UNWEIGHT_LOSS


def test_samples_unweighted_together_keep_their_physical_proportions(tmp_path):
    """QCD-like (large cross section) and ttbar-like files unweighted in one call: the training sample
    holds them in proportion to their cross sections, where per-file references gave each file as
    many events as it had (ttbar 10% of the training background against 0.1% in nature)."""
    from multiscale.generation.truth_tagging import unweighting_references
    from multiscale.generation.writer import write_root

    paths = []
    for process, xsec, n_files in ((0, 1000.0, 2), (1, 1.0, 1)):
        for chunk in range(n_files):
            columns, _, _ = toy_columns(4000, seed=10 * process + chunk)
            columns.update(process=np.full(4000, process, np.int32), gen_seed=np.full(4000, 7 + process),
                           label=np.zeros(4000, np.int32))
            columns["weight"] = columns["weight"] / columns["weight"].sum() * xsec  # a file sums to sigma x A
            paths.append(tmp_path / f"p{process}_{chunk}.root")
            write_root(paths[-1], columns)
    unweighting = unweighting_references(paths, EFF)
    assert {round(scale, 6) for scale, _ in unweighting.values()} == {0.5, 1.0}  # two qcd files, one ttbar
    assert len({reference for _, reference in unweighting.values()}) == 1  # one reference for the background
    kept = {}
    for path in paths:
        scale, reference = unweighting[path]
        _, n_out = truth_tag_file(path, tmp_path / f"out_{path.name}", "train", EFF, 1, 0, reference, scale)
        kept[path.name[:2]] = kept.get(path.name[:2], 0) + n_out
    # ttbar is 1 / 1001 of the cross section: a handful of events at most, not a third
    assert kept["p1"] <= 0.01 * kept["p0"] + 5


def test_the_analysis_region_keeps_whole_classes_and_their_weight():
    columns, flavour, exists = toy_columns(2000, seed=12)
    full = expand(columns, "test", EFF, np.random.default_rng(1))
    region = expand(columns, "test", EFF, np.random.default_rng(1), min_tags=2)
    nbtag = region["fj1_nbtag"] + region["fj2_nbtag"]
    assert np.all(nbtag >= 2) and np.all(region["tag_class"] >= 1)
    full_nbtag = full["fj1_nbtag"] + full["fj2_nbtag"]
    assert region["weight"].sum() == pytest.approx(full["weight"][full_nbtag >= 2].sum())
    with pytest.raises(ValueError, match="splits a tag class"):
        expand(columns, "test", EFF, np.random.default_rng(1), min_tags=1)
    # the b-efficiency variation: a 4-tag copy of an event whose four subjets are b moves by
    # (1.05)^4 up; every copy's factor is its class probability's ratio
    four_b = np.flatnonzero((flavour == 5).all(axis=1) & exists.all(axis=1))
    copy = np.flatnonzero(np.isin(region["event_id"], columns["event_id"][four_b]) & (region["tag_class"] == 3))[0]
    assert region["btag_weight_up"][copy] == pytest.approx(1.05**4)
    assert region["btag_weight_down"][copy] == pytest.approx(0.95**4)


def test_truth_tag_file_round_trip(tmp_path):
    columns, _, _ = toy_columns(300)
    from multiscale.generation.writer import write_root

    write_root(tmp_path / "in.root", columns)
    n_in, n_out = truth_tag_file(tmp_path / "in.root", tmp_path / "out.root", "test", EFF, seed=1)
    assert n_in == 300 and n_out > n_in
    with uproot.open(tmp_path / "out.root") as f:
        tree = f["Events"]
        assert tree.num_entries == n_out and "tag_class" in tree.keys()
        weights = tree["weight"].array(library="np")
    assert weights.sum() == pytest.approx(columns["weight"].sum())


def test_truth_tag_refuses_a_tagging_efficiency_outside_0_1(tmp_path, capsys):
    """The tag-efficiency options are shared with generate_events.py and checked where they are parsed."""
    from multiscale.generation.cli import truth_tag_main

    with pytest.raises(SystemExit) as exit_info:
        truth_tag_main(["--mode", "test", "--outdir", str(tmp_path / "out"), "--btag-eff", "7", str(tmp_path / "in.root")])
    assert exit_info.value.code == 2
    assert "--btag-eff: must lie in [0, 1], got 7" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_enriched_mixture_shows_every_kept_event_in_the_region():
    """--mixture samples: unweighted on the generator weights alone, so many more events reach the region's
    training copies than with the physical mixture (whose region probabilities span orders of magnitude)."""
    columns, flavour, exists = toy_columns(20_000, seed=21)
    physical = expand(columns, "train", EFF, np.random.default_rng(2), min_tags=2)
    enriched = expand(columns, "train", EFF, np.random.default_rng(2), min_tags=2, mixture="samples")
    assert len(enriched["weight"]) > 5 * len(physical["weight"])
    assert np.all(enriched["fj1_nbtag"] + enriched["fj2_nbtag"] >= 2)
    # one copy per kept event, every event that can enter the region kept in proportion to its weight
    assert len(np.unique(enriched["event_id"])) == len(enriched["event_id"])
    with pytest.raises(ValueError, match="mixture"):
        expand(columns, "train", EFF, np.random.default_rng(2), mixture="flat")


def test_the_region_copies_give_the_region_yield_of_each_sample():
    """Two samples (different flavour mixes) truth-tagged into the >= 2-tag region give the yields of their full
    truth tagging restricted to the region: each sample's region copies carry the region's share of its
    acceptance. (Normalised to the whole acceptance, each sample filled the region with its whole cross section.)"""
    from multiscale.evaluation.io import SCORE_BRANCH, TRUTH_BRANCH, Prediction
    from multiscale.evaluation.yields import yield_weights

    def sample(seed, process, flavour_b):
        columns, _, _ = toy_columns(1500, seed=seed)
        rng = np.random.default_rng(seed)
        for name in FLAVOUR_BRANCHES:  # a sample with fewer b subjets than the other
            columns[name] = np.where(rng.random(1500) < flavour_b, FLAVOUR_B, FLAVOUR_LIGHT).astype(np.int32)
        columns.update(process=np.full(1500, process), xsec_fb=np.full(1500, 1e3 * (process + 1)),
                       acceptance=np.full(1500, 0.3))
        return columns

    def yields(parts, mode_args):
        tagged = [expand(columns, "test", EFF, np.random.default_rng(1), **mode_args) for columns in parts]
        arrays = {name: np.concatenate([np.asarray(t[name]) for t in tagged])
                  for name in ("process", "weight", "xsec_fb", "acceptance", "fj1_nbtag", "fj2_nbtag")}
        arrays[TRUTH_BRANCH] = np.zeros(len(arrays["weight"]))
        arrays[SCORE_BRANCH] = np.zeros(len(arrays["weight"]))
        events = Prediction("toy", arrays)
        in_region = arrays["fj1_nbtag"] + arrays["fj2_nbtag"] >= 2
        y = yield_weights(events, 3000.0)
        return {code: y[(arrays["process"] == code) & in_region].sum() for code in (0, 1)}

    parts = [sample(3, 0, 0.05), sample(4, 1, 0.6)]
    full, region = yields(parts, {}), yields(parts, {"min_tags": 2})
    assert full[0] < 0.1 * 3000.0 * 1e3 * 0.3  # the light sample is rarely in the region: the test can tell
    for code in (0, 1):
        assert region[code] == pytest.approx(full[code], rel=1e-9)
