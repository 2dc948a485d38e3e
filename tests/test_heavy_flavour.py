"""The heavy-flavour filter, the per-sample normalisation of stitched samples, and the per-event MC
statistics of truth-tagged copies (issue 25).

The filter's decision is tested on parton-level events built by hand (Pythia's Event record, the
jets found by the filter's own SlowJet); the stitching of real Pythia samples is in
``test_stitching.py``.
"""

import numpy as np
import pytest
import pythia8mc

from multiscale.evaluation.cutbased import OptimisationGrid, scan
from multiscale.evaluation.io import Prediction, PredictionError
from multiscale.evaluation.limits import binned_yields
from multiscale.evaluation.metrics import best_significance, roc
from multiscale.evaluation.yields import background_statistics, event_index, mc_statistics, yield_weights
from multiscale.generation.btagging import TagEfficiencies
from multiscale.generation.cli import parse_config
from multiscale.generation.hf_filter import HeavyFlavourFilter, has_heavy_flavour
from multiscale.generation.truth_tagging import class_probabilities, configuration_probabilities
from multiscale.schema import PHASE_SPACES

QCD, HH4B = 0, 2
INCLUSIVE, FILTERED, VETOED = PHASE_SPACES["inclusive"], PHASE_SPACES["hf_filtered"], PHASE_SPACES["hf_vetoed"]


# --- the filter's decision on parton-level events -------------------------------------------------------------


def parton_event(partons):
    """A Pythia Event of final-state partons: (pdg id, pT, eta, phi) each, massless (b quarks 4.8 GeV)."""
    event = pythia8mc.Event()
    event.init()
    event.append(90, -11, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 14000.0, 14000.0)  # entry 0: the system, as Pythia's
    for pid, pt, eta, phi in partons:
        mass = 4.8 if abs(pid) == 5 else 0.0
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        event.append(pid, 23, 0, 0, 0, 0, 0, 0, px, py, pz, float(np.sqrt(px**2 + py**2 + pz**2 + mass**2)), mass)
    return event


def decide(partons):
    return has_heavy_flavour(parton_event(partons), HeavyFlavourFilter("require").jets)


def test_filter_needs_a_b_quark_in_each_of_the_two_leading_jets():
    # two back-to-back jets of two partons each, and a softer third jet at phi = pi / 2
    jet1 = [(21, 300.0, 0.0, 0.0), (1, 100.0, 0.3, 0.2)]
    jet2 = [(21, 350.0, 0.5, np.pi), (2, 80.0, 0.2, np.pi - 0.3)]
    third = [(21, 150.0, -1.5, np.pi / 2)]
    assert not decide(jet1 + jet2 + third)
    b_in_1 = [(5, 100.0, 0.3, 0.2)] + jet1[:1]
    b_in_2 = [(-5, 80.0, 0.2, np.pi - 0.3)] + jet2[:1]
    assert decide(b_in_1 + b_in_2 + third)
    assert not decide(b_in_1 + jet2 + third)  # b in one leading jet only
    assert not decide(jet1 + b_in_2 + third)
    # a b quark in the third jet does not count, one in a leading jet's edge (dR < 1) does
    assert not decide(b_in_1 + jet2 + [(5, 150.0, -1.5, np.pi / 2)])
    assert decide(b_in_1 + jet2[:1] + [(5, 30.0, 0.5 + 0.9, np.pi)] + third)
    assert not decide(b_in_1 + jet2[:1] + [(5, 30.0, 0.5 + 1.3, np.pi)] + third)  # outside R = 1
    # fewer than two jets above the filter's pT threshold: no
    assert not decide([(5, 300.0, 0.0, 0.0), (5, 50.0, 0.0, np.pi)])


def test_filter_modes_veto_opposite_events():
    passing = parton_event([(5, 300.0, 0.0, 0.0), (5, 300.0, 0.0, np.pi)])
    failing = parton_event([(21, 300.0, 0.0, 0.0), (21, 300.0, 0.0, np.pi)])

    class Info:
        def weight(self):
            return 2.0

    class FakePythia:
        def infoPython(self):
            return Info()

    require, veto = HeavyFlavourFilter("require"), HeavyFlavourFilter("veto")
    for hook in (require, veto):
        hook.pythia = FakePythia()
    assert require.doVetoPartonLevel(passing) is False and require.doVetoPartonLevel(failing) is True
    assert veto.doVetoPartonLevel(passing) is True and veto.doVetoPartonLevel(failing) is False
    for hook in (require, veto):
        assert (hook.counts.n_tried, hook.counts.n_passed) == (2, 1)
        assert (hook.counts.weight_tried, hook.counts.weight_passed) == (4.0, 2.0)
        assert (hook.summary()["weight2_tried"], hook.summary()["weight2_passed"]) == (8.0, 4.0)
    assert require.summary()["kept_fraction_weighted"] == 0.5 == veto.summary()["kept_fraction_weighted"]
    with pytest.raises(ValueError, match="mode"):
        HeavyFlavourFilter("sometimes")


def test_generator_refuses_the_filter_where_it_does_not_apply(tmp_path, capsys):
    for extra in (["--process", "hh4b", "--events", "5"], ["--process", "qcd", "--lhe", str(tmp_path / "x.lhe")]):
        with pytest.raises(SystemExit):
            parse_config([*extra, "--hf-filter", "require", "--outdir", str(tmp_path)])
        assert "--hf-filter applies to" in capsys.readouterr().err
    config = parse_config(["--process", "qcd", "--events", "5", "--hf-filter", "veto", "--outdir", str(tmp_path)])
    assert config.phase_space == VETOED and config.file_stem(3) == "qcd_nohf_1_3"


# --- normalisation per sample --------------------------------------------------------------------------------


def toy(process, phase_space, weight, xsec_fb, acceptance, event_id=None, nbtag=None, score=None):
    n = len(process)
    arrays = {
        "is_signal": np.asarray(process) == HH4B,
        "score_is_signal": np.zeros(n) if score is None else np.asarray(score, dtype=float),
        "process": np.asarray(process, dtype=np.int32),
        "phase_space": np.asarray(phase_space, dtype=np.int32),
        "gen_seed": np.where(np.asarray(phase_space) == FILTERED, 2, 1),
        "event_id": np.arange(n) if event_id is None else np.asarray(event_id),
        "weight": np.asarray(weight, dtype=float),
        "xsec_fb": np.asarray(xsec_fb, dtype=float),
        "acceptance": np.asarray(acceptance, dtype=float),
    }
    if nbtag is not None:
        arrays.update(fj1_nbtag=np.minimum(nbtag, 2), fj2_nbtag=np.asarray(nbtag) - np.minimum(nbtag, 2))
    return Prediction("toy", arrays)


def test_filtered_and_vetoed_samples_are_normalised_each_to_its_own_cross_section():
    # QCD vetoed: 4 events, sigma x A = 1000 x 0.5; filtered: 2 events, 10 x 0.8; signal 1 event 1 x 1
    prediction = toy([QCD] * 4 + [QCD] * 2 + [HH4B], [VETOED] * 4 + [FILTERED] * 2 + [INCLUSIVE],
                     [1.0, 1.0, 1.0, 1.0, 3.0, 1.0, 1.0], [1000.0] * 4 + [10.0] * 2 + [1.0],
                     [0.5] * 4 + [0.8] * 2 + [1.0])
    y = yield_weights(prediction, 2.0)
    # L = 2: vetoed 2 x 500 / 4 each; filtered 2 x 8 x (3, 1) / 4; signal 2
    np.testing.assert_allclose(y, [250.0] * 4 + [12.0, 4.0] + [2.0])
    # normalised per process (the code before the stitching), the filtered events would share the
    # vetoed sample's sigma x A: the mean over both, 336, spread over 6 events by weight (a 30x bias)
    assert y[4] + y[5] == pytest.approx(16.0)


def test_a_process_from_overlapping_or_incomplete_samples_is_refused():
    def with_spaces(spaces):
        n = len(spaces)
        return toy([QCD] * n + [HH4B], list(spaces) + [INCLUSIVE], [1.0] * (n + 1), [1.0] * (n + 1), [1.0] * (n + 1))

    with pytest.raises(PredictionError, match="double counting"):
        yield_weights(with_spaces([INCLUSIVE, INCLUSIVE, FILTERED]), 1.0)
    with pytest.raises(PredictionError, match="missing"):
        yield_weights(with_spaces([FILTERED, FILTERED]), 1.0)
    with pytest.raises(PredictionError, match="missing"):
        yield_weights(with_spaces([VETOED]), 1.0)
    # one sample on its own, when asked for (the stitching check compares the samples separately)
    assert yield_weights(with_spaces([FILTERED, FILTERED]), 1.0, check_stitching=False).sum() == pytest.approx(2.0)
    # files without the branch are inclusive
    legacy = with_spaces([INCLUSIVE, INCLUSIVE])
    del legacy.arrays["phase_space"]
    assert yield_weights(legacy, 1.0).sum() == pytest.approx(2.0)


# --- the copies of one truth-tagged event are one MC event ----------------------------------------------------


def four_b_copies(efficiency=0.7):
    """The truth-tag copies (one per class: <= 1, 2, 3, 4 tags) of one event with four b subjets, and
    of 9 other untagged-looking light events with weight 1 each (to have a background to speak of)."""
    flavour = np.array([[5, 5, 5, 5]])
    probability = class_probabilities(configuration_probabilities(flavour, np.ones((1, 4), bool),
                                                                 TagEfficiencies(b=efficiency)))[0]
    return probability, np.array([1, 2, 3, 4])


def test_copies_of_one_event_count_as_one_mc_event():
    probability, nbtag = four_b_copies()
    # the event's four copies (event_id 0), each weighted by its class probability
    prediction = toy([QCD] * 4 + [HH4B], [INCLUSIVE] * 5, [*probability, 1.0], [1.0] * 5, [1.0] * 5,
                     event_id=[0, 0, 0, 0, 1], nbtag=[*nbtag, 4], score=[0.1, 0.6, 0.7, 0.8, 0.9])
    at_least_two = np.r_[nbtag >= 2, False]
    # copy by copy (the code before): N_eff = (sum p)^2 / sum p^2 = 2.8 events from one event
    copy_by_copy = mc_statistics(probability[1:])["effective_events"]
    assert copy_by_copy > 2.5
    # per event: 1
    stats = background_statistics(prediction, 1.0, at_least_two)
    assert stats["effective_events"] == pytest.approx(1.0)
    assert stats["stat_uncertainty"] == pytest.approx(probability[1:].sum())
    # the ROC's N_eff at a cut keeping the three tagged copies, the best-significance scan's N_eff
    event = event_index(prediction)
    y = yield_weights(prediction, 1.0)
    curve = roc(prediction.is_signal, prediction.score, y, event)
    kept_three = np.flatnonzero(np.isclose(curve.background_efficiency, probability[1:].sum()))[0]
    assert curve.background_effective_events[kept_three] == pytest.approx(1.0)
    best = best_significance(prediction.is_signal, prediction.score, y, min_background_events=0.5, event=event)
    assert best["background_effective_events"] == pytest.approx(1.0)
    # score histograms: the copies in one bin are summed before squaring, also in merged bins
    hist = binned_yields(np.array([0, 1, 1, 1, 1]), np.array([0.0, 0.5, 1.0]), prediction.is_signal, y,
                         min_background_events=0.5, event=event)
    assert hist["background_sumw2"][-1] == pytest.approx(probability[1:].sum() ** 2)
    # the cut-based scan: B_sumw2 at >= k tags is (sum of the copies with >= k)^2
    n = len(prediction)
    prediction.arrays.update(fj1_sdmass=np.full(n, 125.0), fj2_sdmass=np.full(n, 125.0), fj1_pt=np.full(n, 500.0),
                             fj2_pt=np.full(n, 500.0), fj1_eta=np.zeros(n), fj2_eta=np.zeros(n),
                             fj1_phi=np.zeros(n), fj2_phi=np.full(n, np.pi), fj1_mass=np.full(n, 50.0),
                             fj2_mass=np.full(n, 50.0))
    sums = scan(prediction, 1.0, 1000.0, OptimisationGrid())
    for k, min_tags in enumerate(OptimisationGrid().min_btags):
        assert sums["B_sumw2"][0, -1, k, 0, -1] == pytest.approx(probability[nbtag >= min_tags].sum() ** 2)
        assert sums["B"][0, -1, k, 0, -1] == pytest.approx(probability[nbtag >= min_tags].sum())


def test_stitching_bins_are_merged_until_both_samples_hold_enough_events():
    from multiscale.evaluation.stitching import merged_bins

    # 3 pT bins x 4 tag classes, flat index pT * 4 + class; N_eff of a bin = y^2 / var, here = its count
    counts = np.array([[500, 40, 12, 3],    # pT bin 0 (lowest)
                       [300, 20, 4, 2],     # pT bin 1
                       [100, 9, 3, 1]])     # pT bin 2 (highest)
    y = counts.ravel().astype(float)
    v = np.diag(y)  # unit weights: variance = count
    groups = merged_bins([(y, v), (y, v)], min_background_events=10)
    grouped = {}
    for flat, g in enumerate(groups):
        grouped.setdefault(g, []).append((flat // 4, flat % 4))
    for members in grouped.values():
        assert sum(counts[p, c] for p, c in members) >= 10
        # merged bins stay within one class, except a class short altogether (class 3: 6 events) joining its neighbour
        assert len({c for _, c in members} - {2, 3}) <= 1
    # class 0 keeps its three pT bins; class 1 merges its top two (9 + 20); class 3 is merged into class 2's lowest group
    assert len({groups[p * 4] for p in range(3)}) == 3
    assert groups[2 * 4 + 1] == groups[1 * 4 + 1] != groups[0 * 4 + 1]
    assert {groups[p * 4 + 3] for p in range(3)} <= {groups[p * 4 + 2] for p in range(3)}


# --- the filtered scale fit of the stitching check, on toys (real Pythia samples: test_stitching.py) -----------


def stitching_toy(rng, n, hf_fraction, phase_space, xsec_fb, seed):
    """n events of the inclusive process (hf_fraction of them heavy flavour, with more b-tags), of its
    heavy-flavour part only (hf_fraction 1) or of the rest (0); unit weights, normalised to xsec_fb."""
    hf = rng.random(n) < hf_fraction
    nbtag = np.where(hf, rng.integers(2, 5, n), rng.integers(0, 3, n))
    prediction = toy([QCD] * n, [phase_space] * n, np.ones(n), np.full(n, xsec_fb), np.ones(n), nbtag=nbtag)
    prediction.arrays["fj1_pt"] = rng.uniform(250.0, 800.0, n)
    prediction.arrays["gen_seed"] = np.full(n, seed)
    return prediction


def test_the_filtered_scale_fit_finds_a_wrong_filtered_normalisation():
    from multiscale.evaluation.stitching import filtered_scale

    rng = np.random.default_rng(4)
    inclusive = stitching_toy(rng, 40_000, 0.2, INCLUSIVE, 100.0, 1)
    vetoed = stitching_toy(rng, 20_000, 0.0, VETOED, 80.0, 2)
    for factor in (1.0, 1.3):
        filtered = stitching_toy(rng, 10_000, 1.0, FILTERED, 20.0 * factor, 3)
        result = filtered_scale(inclusive, Prediction.concatenate([vetoed, filtered]), 1.0)
        # the fit scales the filtered part back: mu = 1 / factor within its error, and that error is small here
        assert abs(result["mu"] - 1.0 / factor) < 3 * result["error"] and result["error"] < 0.03
        assert (result["p_value"] < 1e-6) == (factor != 1.0)

