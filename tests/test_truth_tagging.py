"""Truth tagging (multiscale/generation/truth_tagging.py): exact class probabilities, weights that
sum to the event's weight, and weighted yields that agree with random tagging on a large toy."""

import awkward as ak
import numpy as np
import pytest
import uproot

from multiscale.generation.btagging import FLAVOUR_B, FLAVOUR_C, FLAVOUR_LIGHT, TagEfficiencies, apply_tagging
from multiscale.generation.truth_tagging import (
    FLAVOUR_BRANCHES, SUBJET_SLOTS, class_probabilities, configuration_probabilities, expand, read_columns,
    truth_tag_file,
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


# --- inputs refused before anything is written -----------------------------------------------------------------

QCD, TTBAR = 0, 1
INCLUSIVE, FILTERED, VETOED = 0, 1, 2


def schema_file(path, process=QCD, phase_space=INCLUSIVE, seed=7, n=200, **overrides):
    """A generator-like file: toy subjets, the identity and normalisation branches (``overrides`` replace them)."""
    from multiscale.generation.writer import write_root

    columns, _, _ = toy_columns(n, seed=seed + 100 * phase_space)
    columns.update(process=np.full(n, process, np.int32), phase_space=np.full(n, phase_space, np.int32),
                   gen_seed=np.full(n, seed, np.int64), label=np.zeros(n, np.int32),
                   xsec_fb=np.full(n, 1e4), acceptance=np.full(n, 0.5))
    columns.update({name: np.asarray(values, dtype=np.float64) for name, values in overrides.items()})
    write_root(path, columns)
    return path


def refusal(files, mode, outdir):
    """The one-line error of truth_tag.py on ``files`` (it must refuse them)."""
    from multiscale.generation.cli import truth_tag_main

    with pytest.raises(SystemExit) as exit_info:
        truth_tag_main(["--mode", mode, "--outdir", str(outdir), *map(str, files)])
    message = str(exit_info.value.code)
    assert message.startswith("truth_tag.py: error: ") and "\n" not in message
    assert not outdir.exists()  # nothing written, not even the directory
    return message


@pytest.mark.parametrize("case", ["only the vetoed half", "inclusive and both halves", "one file twice",
                                  "one name from two directories", "the same events under two names"])
def test_truth_tag_refuses_the_mixtures_the_evaluation_refuses(tmp_path, case):
    """The files of a --mode train call are one training mixture: a process from its inclusive sample or
    from both heavy-flavour samples (the evaluation's rule), every file once. All of these exited 0."""
    ttbar = schema_file(tmp_path / "ttbar_9_0.root", TTBAR, seed=9)
    vetoed = schema_file(tmp_path / "qcd_nohf_11_0.root", phase_space=VETOED, seed=11)
    filtered = schema_file(tmp_path / "qcd_hf_13_0.root", phase_space=FILTERED, seed=13)
    inclusive = schema_file(tmp_path / "qcd_12_0.root", seed=12)
    (tmp_path / "copy").mkdir()
    files, expected = {
        "only the vetoed half": ([vetoed, ttbar], ["qcd_nohf_11_0.root", "process qcd", "missing", "hf_filtered",
                                                  "--hf-filter require"]),
        "inclusive and both halves": ([inclusive, vetoed, filtered, ttbar], ["qcd_12_0.root", "qcd_nohf_11_0.root",
                                                                              "qcd_hf_13_0.root", "double counting"]),
        "one file twice": ([vetoed, filtered, ttbar, ttbar], ["ttbar_9_0.root is given twice"]),
        "one name from two directories": ([vetoed, filtered, ttbar, schema_file(tmp_path / "copy" / "ttbar_9_0.root",
                                                                                TTBAR, seed=19)],
                                          ["both be written to", "ttbar_9_0.root"]),
        "the same events under two names": ([vetoed, filtered, ttbar,
                                             schema_file(tmp_path / "ttbar_copy.root", TTBAR, seed=9)],
                                            ["ttbar_9_0.root and", "ttbar_copy.root hold the same generated events"]),
    }[case]
    message = refusal(files, "train", tmp_path / "out")
    assert all(text in message for text in expected), message


def test_truth_tag_takes_the_mixtures_the_evaluation_takes(tmp_path):
    """Both halves (train: one mixture); in test mode, where each file is tagged on its own (the workflow
    tags one chunk per call), one half alone or the inclusive sample with both, and the test sample's
    mixture is checked by the evaluation."""
    from multiscale.evaluation.io import PredictionError, read_event_files
    from multiscale.evaluation.yields import yield_weights
    from multiscale.generation.cli import truth_tag_main

    vetoed = schema_file(tmp_path / "qcd_nohf_11_0.root", phase_space=VETOED, seed=11)
    filtered = schema_file(tmp_path / "qcd_hf_13_0.root", phase_space=FILTERED, seed=13)
    ttbar = schema_file(tmp_path / "ttbar_9_0.root", TTBAR, seed=9)
    train = ["--mode", "train", "--outdir", str(tmp_path / "train")]
    assert truth_tag_main([*train, *map(str, (vetoed, filtered, ttbar))]) == 0
    assert truth_tag_main(["--mode", "test", "--outdir", str(tmp_path / "test"), str(vetoed)]) == 0
    inclusive = schema_file(tmp_path / "qcd_12_0.root", seed=12)  # the stitching test tags it next to both halves
    test_all = ["--mode", "test", "--outdir", str(tmp_path / "all")]
    assert truth_tag_main([*test_all, *map(str, (inclusive, vetoed, filtered))]) == 0
    copies = read_event_files([tmp_path / "test" / vetoed.name], ["process", "phase_space", "weight", "xsec_fb",
                                                                 "acceptance", "gen_seed", "event_id"])
    copies.arrays["is_signal"] = np.zeros(len(copies.arrays["weight"]))
    with pytest.raises(PredictionError, match="missing"):  # the same rule, where the test files meet
        yield_weights(copies, 1.0)


@pytest.mark.parametrize("mode", ["test", "train"])
@pytest.mark.parametrize("branch, values, expected", [
    ("acceptance", -0.5, "branch 'acceptance' is -0.5 (<= 0)"),
    ("acceptance", 0.0, "branch 'acceptance' is 0 (<= 0)"),
    ("acceptance", np.nan, "branch 'acceptance' is NaN or infinite"),
    ("xsec_fb", np.inf, "branch 'xsec_fb' is NaN or infinite"),
    ("weight", -1.0, "the 'weight' sums to -200"),
])
def test_truth_tag_refuses_a_file_that_cannot_be_normalised(tmp_path, mode, branch, values, expected):
    """A chunk of signed (NLO) weights that sum to <= 0 (the FxFx file cut into 15-event chunks gives
    acceptance -0.5 and 0), or a NaN: its copies would carry negative or NaN yields. They were written."""
    bad = schema_file(tmp_path / "qcd_5_1.root", seed=5, **{branch: np.full(200, values)})
    good = schema_file(tmp_path / "qcd_5_0.root", seed=6)
    message = refusal([good, bad], mode, tmp_path / "out")
    assert "qcd_5_1.root: " + expected in message and "qcd_5_0" not in message
    if branch != "xsec_fb" and np.isfinite(values):
        assert "--events-per-file" in message  # the fix


def test_truth_tag_refuses_test_copies_whose_region_sums_to_no_cross_section(tmp_path):
    """Signed weights: a file whose weights sum to > 0 can still hold <= 0 inside the tag region (here a
    four-b event of weight -1 and a light one of +2): its region copies would get acceptance < 0."""
    from multiscale.generation.cli import truth_tag_main

    from multiscale.generation.writer import write_root

    path = schema_file(tmp_path / "qcd_3_0.root", seed=3, n=2, weight=[-1.0, 2.0])
    columns = read_columns(path)
    mask = np.ones((2, N_OBJECTS), dtype=np.float32)  # every subjet present
    columns["obj_mask"] = ak.from_regular(mask, axis=1)
    for name in FLAVOUR_BRANCHES:
        columns[name] = np.array([FLAVOUR_B, FLAVOUR_LIGHT], dtype=np.int32)
    write_root(path, columns)
    with pytest.raises(SystemExit) as exit_info:
        truth_tag_main(["--mode", "test", "--min-tags", "2", "--outdir", str(tmp_path / "out"), str(path)])
    assert "qcd_3_0.root: its copies in the region of >= 2 b-tagged subjets" in str(exit_info.value.code)
    assert "<= 0" in str(exit_info.value.code)
    assert not (tmp_path / "out" / path.name).exists()
    # given after a good file, it is refused before the good one is written: nothing half-done
    good = schema_file(tmp_path / "qcd_5_0.root", seed=5)
    with pytest.raises(SystemExit):
        truth_tag_main(["--mode", "test", "--min-tags", "2", "--outdir", str(tmp_path / "both"), str(good), str(path)])
    assert not (tmp_path / "both" / good.name).exists()
    # the whole file (no region) sums to +1: tagged
    assert truth_tag_main(["--mode", "test", "--outdir", str(tmp_path / "all"), str(path)]) == 0


def test_truth_tag_train_mode_takes_an_empty_chunk(tmp_path):
    """A chunk where no event passed (a 0-event file) was an IndexError traceback in train mode."""
    from multiscale.generation.cli import truth_tag_main

    empty = schema_file(tmp_path / "qcd_4_1.root", seed=4, n=0)
    full = schema_file(tmp_path / "qcd_4_0.root", seed=4)
    assert truth_tag_main(["--mode", "train", "--outdir", str(tmp_path / "out"), str(full), str(empty)]) == 0
    with uproot.open(tmp_path / "out" / empty.name) as handle:
        assert handle["Events"].num_entries == 0
