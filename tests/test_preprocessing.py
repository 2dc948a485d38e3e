"""Jet alignment (centre, rotate, flip) vectorised over jagged arrays vs a plain per-jet NumPy loop."""

import awkward as ak
import numpy as np
import pytest

from multiscale.kinematics import wrap_phi
from multiscale.preprocessing import aligned_eta, aligned_phi, concat_jets


def reference_align(deta, dphi, pt):
    """One jet at a time, written the obvious way."""
    x = deta - np.average(deta, weights=pt)
    y = dphi - np.average(dphi, weights=pt)
    cov = np.cov(np.vstack([x, y]), aweights=pt, bias=True)
    eigvals, eigvecs = np.linalg.eigh(cov)
    major = eigvecs[:, np.argmax(eigvals)]  # principal axis
    angle = np.pi / 2 - np.arctan2(major[1], major[0])  # rotate it onto the vertical
    xr = x * np.cos(angle) - y * np.sin(angle)
    yr = x * np.sin(angle) + y * np.cos(angle)
    if yr[np.argmax(pt)] < 0:
        yr = -yr
    if pt[xr > 0].sum() < pt[xr < 0].sum():
        xr = -xr
    return xr, yr


@pytest.fixture
def jets():
    rng = np.random.default_rng(7)
    counts = rng.integers(2, 40, size=200)
    deta = [rng.normal(rng.normal(0, 0.2), rng.uniform(0.05, 0.4), n) for n in counts]
    dphi = [rng.normal(rng.normal(0, 0.2), rng.uniform(0.05, 0.4), n) for n in counts]
    pt = [rng.exponential(10, n) + 0.5 for n in counts]
    return ak.Array(deta), ak.Array(dphi), ak.Array(pt)


def test_alignment_matches_per_jet_reference(jets):
    deta, dphi, pt = jets
    eta_new, phi_new = aligned_eta(deta, dphi, pt), aligned_phi(deta, dphi, pt)
    for i in range(len(deta)):
        ref_x, ref_y = reference_align(*(np.asarray(a[i]) for a in (deta, dphi, pt)))
        # the principal axis is defined up to its sign: the flips remove that ambiguity
        np.testing.assert_allclose(np.asarray(eta_new[i]), ref_x, atol=1e-9)
        np.testing.assert_allclose(np.asarray(phi_new[i]), ref_y, atol=1e-9)


def test_aligned_jets_are_centred_vertical_and_flipped(jets):
    deta, dphi, pt = jets
    x, y = aligned_eta(deta, dphi, pt), aligned_phi(deta, dphi, pt)
    sum_pt = ak.sum(pt, axis=1)
    np.testing.assert_allclose(ak.to_numpy(ak.sum(pt * x, axis=1) / sum_pt), 0, atol=1e-12)
    np.testing.assert_allclose(ak.to_numpy(ak.sum(pt * y, axis=1) / sum_pt), 0, atol=1e-12)
    # vertical principal axis: no x-y correlation and more spread in phi' than in eta'
    np.testing.assert_allclose(ak.to_numpy(ak.sum(pt * x * y, axis=1)), 0, atol=1e-9)
    assert ak.all(ak.sum(pt * y * y, axis=1) >= ak.sum(pt * x * x, axis=1) - 1e-12)
    leading_y = ak.firsts(y[ak.argmax(pt, axis=1, keepdims=True)])
    assert ak.all(leading_y >= 0)


def test_rotation_preserves_distances(jets):
    deta, dphi, pt = jets
    x, y = aligned_eta(deta, dphi, pt), aligned_phi(deta, dphi, pt)
    before = (deta[:, 0] - deta[:, 1]) ** 2 + (dphi[:, 0] - dphi[:, 1]) ** 2
    after = (x[:, 0] - x[:, 1]) ** 2 + (y[:, 0] - y[:, 1]) ** 2
    np.testing.assert_allclose(ak.to_numpy(after), ak.to_numpy(before), rtol=1e-9)


def test_empty_and_single_constituent_jets_stay_finite():
    deta, dphi, pt = ak.Array([[], [0.3]]), ak.Array([[], [-0.2]]), ak.Array([[], [5.0]])
    x, y = aligned_eta(deta, dphi, pt), aligned_phi(deta, dphi, pt)
    assert ak.num(x).tolist() == [0, 1]
    assert np.isfinite(ak.to_numpy(ak.flatten(x))).all() and np.isfinite(ak.to_numpy(ak.flatten(y))).all()
    assert abs(x[1, 0]) < 1e-12 and abs(y[1, 0]) < 1e-12


def test_concat_jets_keeps_the_hardest_of_each_jet():
    first, second = ak.Array([[5, 4, 3], [9]]), ak.Array([[2, 1], []])
    assert concat_jets(first, second, 2).tolist() == [[5, 4, 2, 1], [9]]


def test_wrap_phi_range():
    values = np.array([-7.0, -np.pi, 0.0, np.pi, 7.0])
    wrapped = wrap_phi(values)
    assert np.all(wrapped >= -np.pi) and np.all(wrapped < np.pi)
    np.testing.assert_allclose(np.cos(wrapped), np.cos(values))


def test_each_jet_is_aligned_once_through_weavers_new_variables(jets, monkeypatch):
    """weaver evaluates the data config's aligned_eta and aligned_phi expressions one after the other
    on the same arrays: the alignment runs once, and other arrays are never served the stale result."""
    from weaver.utils.data.preprocess import _build_new_variables

    from multiscale import preprocessing
    from multiscale.weaver_io import register_custom_functions

    calls = []
    align = preprocessing._align
    monkeypatch.setattr(preprocessing, "_align", lambda *a: calls.append(1) or align(*a))
    register_custom_functions()
    deta, dphi, pt = jets
    table = ak.Array({"d": deta, "p": dphi, "pt": pt})  # weaver's table: a record array
    _build_new_variables(table, {"x": "aligned_eta(d, p, pt)", "y": "aligned_phi(d, p, pt)"})
    assert len(calls) == 1
    reference = align(deta, dphi, pt)
    assert ak.all(table["x"] == reference[0]) and ak.all(table["y"] == reference[1])
    other = ak.Array([[0.1, -0.2], [0.3]]), ak.Array([[0.0, 0.1], [0.2]]), ak.Array([[2.0, 1.0], [1.0]])
    assert ak.all(aligned_phi(*other) == align(*other)[1]) and len(calls) == 2
