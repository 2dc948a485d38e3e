"""Flavour labels as taggers make them: one hadron labels at most one jet; overlapping subjets are one
tagging object (multiscale/generation/btagging.py)."""

import numpy as np
import pytest

from multiscale.generation import btagging
from multiscale.generation.btagging import (
    FLAVOUR_B, FLAVOUR_C, FLAVOUR_LIGHT, FLAVOUR_UNTAGGABLE, Hadrons, TagEfficiencies, label_jets)
from multiscale.kinematics import delta_r

EFF = TagEfficiencies(0.77, 0.15, 0.01)


def hadrons(*rows):
    """Hadrons from (event, eta, phi) rows."""
    event, eta, phi = (np.array(column, dtype=float) for column in zip(*rows)) if rows else ([], [], [])
    return Hadrons(event=np.asarray(event, dtype=np.int64), eta=np.asarray(eta), phi=np.asarray(phi))


NO_HADRONS = hadrons()


def two_subjets(dr, pt=(200.0, 150.0)):
    """One event, one fat jet: two subjets ``dr`` apart in eta, both present."""
    return (np.array([pt]), np.array([[0.0, dr]]), np.zeros((1, 2)), np.ones((1, 2), dtype=bool))


def test_one_hadron_between_two_subjets_labels_only_the_nearest():
    # subjets 0.25 apart (no overlap at these pT: radii 0.15 and 0.2); the hadron is within 0.3 of both
    pt, eta, phi, exists = two_subjets(0.25)
    flavour = label_jets(pt, eta, phi, exists, hadrons((0, 0.15, 0.0)), NO_HADRONS, n_subjets=2)
    np.testing.assert_array_equal(flavour, [[FLAVOUR_LIGHT, FLAVOUR_B]])
    # the rule it replaces (every jet within 0.3) labelled both
    assert (delta_r(0.15, 0.0, eta[0], phi[0]) < btagging.MATCH_DR).all()


def test_two_hadrons_label_two_subjets_and_b_overrides_c():
    pt, eta, phi, exists = two_subjets(0.5)
    flavour = label_jets(pt, eta, phi, exists, hadrons((0, 0.05, 0.0), (0, 0.45, 0.0)),
                         hadrons((0, 0.5, 0.01)), n_subjets=2)
    np.testing.assert_array_equal(flavour, [[FLAVOUR_B, FLAVOUR_B]])
    flavour = label_jets(pt, eta, phi, exists, hadrons((0, 0.05, 0.0)), hadrons((0, 0.5, 0.01)), n_subjets=2)
    np.testing.assert_array_equal(flavour, [[FLAVOUR_B, FLAVOUR_C]])
    far = label_jets(pt, eta, phi, exists, hadrons((0, 2.0, 0.0)), NO_HADRONS, n_subjets=2)
    np.testing.assert_array_equal(far, [[FLAVOUR_LIGHT, FLAVOUR_LIGHT]])


def test_hadrons_stay_in_their_own_event():
    pt, eta, phi, exists = (np.repeat(a, 2, axis=0) for a in two_subjets(0.5))
    flavour = label_jets(pt, eta, phi, exists, hadrons((1, 0.5, 0.0)), NO_HADRONS, n_subjets=2)
    np.testing.assert_array_equal(flavour, [[FLAVOUR_LIGHT, FLAVOUR_LIGHT], [FLAVOUR_LIGHT, FLAVOUR_B]])


def test_absent_jets_take_no_hadron():
    pt, eta, phi, exists = two_subjets(0.2)
    exists[0, 0] = False
    flavour = label_jets(pt, eta, phi, exists, hadrons((0, 0.0, 0.0)), NO_HADRONS, n_subjets=2)
    np.testing.assert_array_equal(flavour, [[FLAVOUR_LIGHT, FLAVOUR_B]])


@pytest.mark.parametrize("pt, dr, overlaps", [
    ((200.0, 150.0), 0.10, True),    # radii 0.15, 0.2: 0.10 < 0.15
    ((200.0, 150.0), 0.16, False),
    ((40.0, 30.0), 0.39, True),      # soft subjets: radius capped at 0.4... 30/40 = 0.75 -> 0.4
    ((3000.0, 2000.0), 0.019, True),  # hard subjets: radius floored at 0.02
    ((3000.0, 2000.0), 0.021, False),
])
def test_the_overlap_rule_is_the_variable_radius_one(pt, dr, overlaps):
    pt_, eta, phi, exists = two_subjets(dr, pt)
    overlapped = btagging.overlapped_subjets(pt_, eta, phi, exists)
    np.testing.assert_array_equal(overlapped, [[False, overlaps]])  # the softer one (pT order as given)


def test_the_softer_of_overlapping_subjets_is_untaggable_and_its_hadron_goes_to_the_harder():
    pt, eta, phi, exists = two_subjets(0.08, pt=(150.0, 200.0))  # the first is the softer here
    flavour = label_jets(pt, eta, phi, exists, hadrons((0, 0.0, 0.0)), NO_HADRONS, n_subjets=2)
    np.testing.assert_array_equal(flavour, [[FLAVOUR_UNTAGGABLE, FLAVOUR_B]])
    assert EFF.of(np.array([FLAVOUR_UNTAGGABLE]))[0] == 0.0
    tags = btagging.apply_tagging(np.repeat(flavour, 1000, axis=0), np.ones((1000, 2), dtype=bool), EFF,
                                  np.random.default_rng(1))
    assert not tags[:, 0].any() and tags[:, 1].mean() > 0.7
    up, down = btagging.btag_weight_variations(flavour, exists, np.array([[False, True]]), EFF)
    np.testing.assert_allclose([up[0], down[0]], [1.05, 0.95])


def test_the_small_r_jet_is_not_a_subjet():
    # slots: 2 subjets, then a small-R jet close to the second subjet: no overlap rule for it
    pt = np.array([[200.0, 150.0, 150.0]])
    eta, phi = np.array([[0.0, 0.5, 0.52]]), np.zeros((1, 3))
    exists = np.ones((1, 3), dtype=bool)
    flavour = label_jets(pt, eta, phi, exists, hadrons((0, 0.53, 0.0)), NO_HADRONS, n_subjets=2)
    np.testing.assert_array_equal(flavour, [[FLAVOUR_LIGHT, FLAVOUR_LIGHT, FLAVOUR_B]])


def test_one_hadron_never_labels_two_subjets_in_pythia_events():
    """Real hh4b events through the generator's reconstruction: b-labelled jets never outnumber the b hadrons
    that could label them, and the events do hold hadrons within 0.3 of two subjets (the case the rule is for)."""
    from multiscale.definitions import Preselection
    from multiscale.generation import reconstruction
    from multiscale.generation.run import RunConfig
    from multiscale.generation.sources import PythiaSource
    from multiscale.generation.event_record import ChargeTable

    source = PythiaSource.builtin(RunConfig(process="hh4b", events=1, outdir="."), seed=7)
    batch = source.next(60)
    selection = Preselection(fj1_ptmin=250.0, fj2_ptmin=250.0)
    accepted, columns = reconstruction.reconstruct(
        batch.particles, ChargeTable(source.particle_data()), selection, EFF, np.random.default_rng(0))
    assert len(accepted) > 10
    flavour = np.column_stack([columns[f"{name}_flavour"] for name in reconstruction.TAGGED_JETS])
    mask = np.asarray(columns["obj_mask"].to_list())
    b = btagging.select_hadrons(batch.particles, FLAVOUR_B, accepted)
    pt, eta, phi = (np.asarray(columns[f"obj_{f}"].to_list()) for f in ("pt", "eta", "phi"))
    from multiscale.generation.objects import SLOT
    slots = [SLOT[name] for name in reconstruction.TAGGED_JETS]
    dr = delta_r(b.eta[:, None], b.phi[:, None], eta[b.event][:, slots], phi[b.event][:, slots])
    near = (dr < btagging.MATCH_DR) & (mask[b.event][:, slots] > 0)
    assert (near.sum(axis=1) >= 2).any(), "no hadron near two jets: the test would not see the old rule's fault"
    hadrons_near_a_jet = np.bincount(b.event[near.any(axis=1)], minlength=len(accepted))
    b_labels = (flavour == FLAVOUR_B).sum(axis=1)
    assert (b_labels <= hadrons_near_a_jet).all()
    assert (b_labels > 0).mean() > 0.8  # the signal's jets are labelled


def test_the_sources_of_tagged_yield_follow_the_tagged_subjets_labels():
    from multiscale.study.btag_sources import SOURCES, configuration_sources
    from multiscale.generation.truth_tagging import CONFIGS

    def source_of(labels, tagged):
        config = next(i for i, c in enumerate(CONFIGS) if tuple(c) == tagged)
        return SOURCES[configuration_sources(np.array([labels]))[0, config]]

    b, c, light = FLAVOUR_B, FLAVOUR_C, FLAVOUR_LIGHT
    assert source_of([b, b, light, b], (1, 1, 0, 1)) == "two b in one fat jet"
    assert source_of([b, b, light, b], (1, 1, 1, 0)) == "light"
    assert source_of([b, b, light, b], (1, 0, 0, 1)) == "b in separate fat jets"
    assert source_of([b, b, light, b], (1, 1, 1, 1)) == "light"  # a mistag outranks the b pair
    assert source_of([b, c, b, b], (1, 1, 1, 1)) == "charm"
    assert configuration_sources(np.array([[b, b, b, b]]))[0, 0] == -1  # no tag: no source


def test_files_labelled_by_the_earlier_rule_are_another_run():
    """A sidecar without the labelling setting was written by the cone rule: a rerun refuses to mix it in."""
    from multiscale.generation import manifest
    from multiscale.generation.run import RunConfig

    config = RunConfig(process="qcd", events=10, outdir=".")
    settings = manifest.run_settings(config)
    assert settings["flavour_labelling"] == btagging.LABELLING
    manifest._require_same_settings("now.json", settings, config)  # today's files: kept
    earlier = {k: v for k, v in settings.items() if k != "flavour_labelling"}
    with pytest.raises(manifest.ManifestError, match="flavour_labelling"):
        manifest._require_same_settings("earlier.json", earlier, config)
