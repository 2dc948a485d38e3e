"""Interpretability tools: attention weights and their averaged maps, Grad-CAM, and the two CLIs.

Small models and synthetic inputs with a known token content: event i has n1 constituents in fat
jet 1 and n2 in fat jet 2 (pf tokens: fj1's, then fj2's, then padding, ``pf_isfj2`` marking fj2).
"""

from pathlib import Path

import numpy as np

import pytest
import torch
import torch.nn as nn
from matplotlib.figure import Figure

from multiscale.interpret.attention import attention_maps, record_attention
from multiscale.interpret.cli import attention_main, gradcam_main
from multiscale.interpret.data import feature_index, load_events
from multiscale.interpret.gradcam import cam_from, gradcam_histograms, token_cam
from multiscale.synthetic import synthetic_inputs
from multiscale.weaver_io import build_model, load_data_config

REPO_ROOT = Path(__file__).resolve().parents[1]

SMALL = dict(jet_dim=16, jet_heads=2, jet_layers=2, obj_dim=16, obj_heads=2, obj_layers=1, cross_layers=2,
             mlp_dims=(16,), dropout=0.0, pair_bias=False)
K = 4  # constituents shown per jet in the tests
# (n1, n2, objects) per event: ordinary, few constituents, one jet empty, both empty
EVENTS = [(10, 7, 9), (30, 25, 7), (1, 2, 9), (2, 0, 5), (0, 3, 9), (1, 1, 1), (0, 0, 3), (6, 6, 9)]


@pytest.fixture(scope="module")
def configs():
    return {name: load_data_config(REPO_ROOT / "data" / f"{name}.yaml") for name in ("jets_kin", "jet1_jet2_kin")}


def make_model(data_config, seed=0, **options):
    torch.manual_seed(seed)
    model, info = build_model(data_config, fusion="cross", **{**SMALL, **options})
    return model.eval(), info


def two_jet_inputs(data_config, info, events=EVENTS, seed=1):
    """pf / ev inputs holding exactly the constituents and objects listed in ``events``."""
    n = len(events)
    inputs = synthetic_inputs(info, n, min_valid=10**6, generator=torch.Generator().manual_seed(seed))  # all valid
    named = dict(zip(info["input_names"], inputs))
    jet_col = feature_index(data_config, "pf_features", "pf_isfj2")
    for i, (n1, n2, n_obj) in enumerate(events):
        pf_valid = torch.arange(named["pf_mask"].shape[2]) < n1 + n2
        named["pf_features"][i, jet_col] = (torch.arange(pf_valid.numel()) >= n1).float()
        for group in ("pf_features", "pf_vectors", "pf_mask"):
            named[group][i] *= pf_valid
        ev_valid = torch.arange(named["ev_mask"].shape[2]) < n_obj
        for group in ("ev_features", "ev_mask"):
            named[group][i] *= ev_valid
    return [named[name] for name in info["input_names"]]


# ---------------------------------------------------------------- attention weights


@pytest.mark.parametrize("pair_bias", [False, True])
def test_rows_sum_to_one_over_valid_keys_and_vanish_on_padding(configs, pair_bias):
    model, info = make_model(configs["jets_kin"], pair_bias=pair_bias)
    inputs = two_jet_inputs(configs["jets_kin"], info)
    rec = record_attention(model, inputs)
    torch.testing.assert_close(rec["logits"], model(*inputs))  # recording changes nothing
    layers = [(w, rec["valid"][s]) for s, ws in rec["self"].items() for w in ws]
    keys_valid = rec["valid"]["pf"]
    layers += [(w, keys_valid) for w in rec["cross"]]
    assert len(layers) == 2 + 1 + 2
    for weights, valid in layers:
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
        padded = ~valid[:, None, None, :].expand_as(weights)
        assert torch.all(weights[padded] == 0)
    # outside the context manager nothing is recorded
    model(*inputs)
    assert all(layer.last_weights is None for layers in model.attention_layers().values() for layer in layers)


def _force(model, pattern):
    """Forward pre-hooks adding a bias to every attention layer's scores: 'key0' (all attention on the
    register key) or 'self' (each query on itself, self-attention only). Removed by the caller."""

    def hook(module, args):
        x, bias, *context = args  # MultiHeadAttention.forward(x, attn_bias[, context])
        length, keys = x.shape[1], (context[0] if context else x).shape[1]
        extra = torch.full((length, keys), -50.0)
        if pattern == "key0":
            extra[:, 0] = 0.0
        else:
            extra.fill_diagonal_(0.0)
        return (x, bias + extra, *context)

    if pattern == "key0":
        modules = [m for m in model.modules() if m.__class__.__name__ == "MultiHeadAttention"]
    else:
        modules = [m for name, layers in model.attention_layers().items() if name != "cross" for m in layers]
    return [m.register_forward_pre_hook(hook) for m in modules]


@pytest.mark.parametrize("pattern", ["key0", "self"])
def test_forced_attention_pattern_comes_out_of_the_maps(configs, pattern):
    dc = configs["jets_kin"]
    model, info = make_model(dc)
    inputs = two_jet_inputs(dc, info)
    hooks = _force(model, pattern)
    try:
        maps = attention_maps(model, [[x[:3] for x in inputs], [x[3:] for x in inputs]], k=K)  # two batches
    finally:
        for h in hooks:
            h.remove()
    assert set(maps) == {"self:pf", "self:ev", "cross"}
    for name, m in maps.items():
        if pattern == "self" and name == "cross":
            continue
        mean, seen = m.acc.mean(), m.acc.counts > 0
        expected = np.zeros(mean.shape[1:])
        if pattern == "key0":
            expected[:, 0] = 1.0
        else:
            np.fill_diagonal(expected, 1.0)
        for h in range(mean.shape[0]):
            np.testing.assert_allclose(mean[h][seen], expected[seen], atol=1e-6, err_msg=name)
        assert np.all(np.isnan(mean[:, ~seen]))
        assert m.acc.events == len(EVENTS)
    pf = maps["self:pf"]
    assert pf.key_labels == ["reg"] + [f"fj1 {r}" for r in range(1, K + 1)] + [f"fj2 {r}" for r in range(1, K + 1)]
    assert maps["cross"].query_labels[:3] == ["reg", "fj1", "fj2"] and maps["cross"].query_labels[-1] == "MET"
    if pattern == "key0":  # nothing goes beyond the displayed ranks
        np.testing.assert_allclose(pf.acc.rest_mean()[~np.isnan(pf.acc.rest_mean())], 0.0, atol=1e-6)


def test_uniform_attention_is_averaged_over_valid_pairs_only(configs):
    """Query projection = 0: every query spreads 1 / (1 + n1 + n2) over the valid keys. The map of a pair is the
    mean of that over the events holding both tokens: padding must neither dilute nor enter it."""
    dc = configs["jets_kin"]
    model, info = make_model(dc)
    last = model.attention_layers()["pf"][-1]
    dim = last.out_proj.in_features
    with torch.no_grad():  # the packed projection's first third gives the queries
        last.qkv_proj.weight[:dim].zero_()
        last.qkv_proj.bias[:dim].zero_()
    maps = attention_maps(model, [two_jet_inputs(dc, info)], layer=-1, k=K)
    mean, counts = maps["self:pf"].acc.mean(), maps["self:pf"].acc.counts

    def tokens(n1, n2):  # displayed slots present in an event
        return [0] + [1 + r for r in range(min(n1, K))] + [1 + K + r for r in range(min(n2, K))]

    expected_sum, expected_count = np.zeros((1 + 2 * K,) * 2), np.zeros((1 + 2 * K,) * 2)
    for n1, n2, _ in EVENTS:
        for q in tokens(n1, n2):
            for k in tokens(n1, n2):
                expected_sum[q, k] += 1.0 / (1 + n1 + n2)
                expected_count[q, k] += 1
    np.testing.assert_array_equal(counts, expected_count)
    seen = expected_count > 0
    for h in range(mean.shape[0]):
        np.testing.assert_allclose(mean[h][seen], (expected_sum / np.maximum(expected_count, 1))[seen], rtol=1e-5)
    # the rest: mass on valid constituents beyond rank K, per query slot
    rest = maps["self:pf"].acc.rest_mean()[0]
    beyond = [(max(n1 - K, 0) + max(n2 - K, 0)) / (1 + n1 + n2) for n1, n2, _ in EVENTS]
    np.testing.assert_allclose(rest[0], np.mean(beyond), rtol=1e-5)  # the register query exists in every event
    # relative scale: weight x valid keys = 1 everywhere for uniform attention
    relative = attention_maps(model, [two_jet_inputs(dc, info)], k=K, relative=True)["self:pf"].acc.mean()
    np.testing.assert_allclose(relative[:, seen], 1.0, rtol=1e-5)


def test_cross_map_keys_of_two_particle_streams(configs):
    dc = configs["jet1_jet2_kin"]
    model, info = make_model(dc)
    inputs = synthetic_inputs(info, 6, generator=torch.Generator().manual_seed(3))
    maps = attention_maps(model, [inputs], k=K)
    cross = maps["cross"]
    assert cross.key_labels == (["reg j1"] + [f"fj1 {r}" for r in range(1, K + 1)]
                                + ["reg j2"] + [f"fj2 {r}" for r in range(1, K + 1)])
    present = cross.acc.query_counts > 0  # object slots that occur in the random events
    assert np.isfinite(cross.acc.sums).all() and (cross.acc.counts[present][:, [0, K + 1]] > 0).all()
    np.testing.assert_allclose(cross.acc.counts[present][:, 0], cross.acc.query_counts[present])


# ---------------------------------------------------------------- Grad-CAM


def test_cam_from_analytic():
    acts = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [5.0, 5.0]]])  # token 2 is padding
    grads = torch.tensor([[[2.0, -1.0], [0.0, 1.0], [100.0, 100.0]]])
    valid = torch.tensor([[True, True, False]])
    # gradcam: alpha = mean over the 2 valid tokens = (1, 0); cam = relu(acts @ alpha) = (1, 0), padding 0
    torch.testing.assert_close(cam_from(acts, grads, valid, "gradcam"), torch.tensor([[1.0, 0.0, 0.0]]))
    # hirescam: relu(sum_d g * a) per token = (2, 2), padding 0
    torch.testing.assert_close(cam_from(acts, grads, valid, "hirescam"), torch.tensor([[2.0, 2.0, 0.0]]))


class _ChannelsFirst(nn.Module):
    """Wraps a block so that captum sees its output as (N, D, T) (channels on dim 1)."""

    class _T(nn.Module):
        def forward(self, x):
            return x.transpose(1, 2)

    def __init__(self, block):
        super().__init__()
        self.block, self.to_channels_first, self.back = block, self._T(), self._T()

    def forward(self, x, bias):
        return self.back(self.to_channels_first(self.block(x, bias)))


def test_gradcam_matches_captum_layer_gradcam(configs):
    from captum.attr import LayerGradCam

    dc = configs["jets_kin"]
    model, info = make_model(dc)
    # every pf token valid: captum averages over all positions, ours over valid ones
    inputs = synthetic_inputs(info, 5, num_tokens={"pf": 12}, min_valid=12, generator=torch.Generator().manual_seed(4))
    ours, _ = token_cam(model, inputs, target=0, method="gradcam")
    blocks = model.stream_blocks("pf")
    wrapped = _ChannelsFirst(blocks[-1])
    blocks[-1] = wrapped
    try:
        reference = LayerGradCam(model, wrapped.to_channels_first).attribute(
            tuple(inputs), target=0, relu_attributions=True)
    finally:
        blocks[-1] = wrapped.block
    torch.testing.assert_close(ours["pf"][0], reference[:, 0].detach(), rtol=1e-4, atol=1e-6)
    assert ours["pf"][0].sum() > 0


@pytest.mark.parametrize("method", ["gradcam", "hirescam"])
def test_gradcam_of_a_one_constituent_toy_lights_its_bin(configs, method):
    """Toy: the last pf block passes on constituent k only (others zeroed) and the score is |token k|^2."""
    dc = configs["jets_kin"]
    model, info = make_model(dc)
    k, eta, phi = 2, 0.3, -0.5
    events = [(5, 3, 9), (3, 6, 9), (4, 0, 9)]
    inputs = two_jet_inputs(dc, info, events)
    features = inputs[info["input_names"].index("pf_features")]
    g = torch.Generator().manual_seed(5)
    features[:, 0] = torch.rand(features.shape[0], features.shape[2], generator=g) * 1.6 - 0.8  # others anywhere
    features[:, 1] = torch.rand(features.shape[0], features.shape[2], generator=g) * 1.6 - 0.8
    features[:, 0, k], features[:, 1, k] = eta, phi

    class OnlyK(nn.Module):
        def __init__(self, block):
            super().__init__()
            self.block = block

        def forward(self, x, bias):
            out = self.block(x, bias)
            keep = torch.zeros(out.shape[1], 1)
            keep[1 + k] = 1.0
            return out * keep

    class Square(nn.Module):
        def forward(self, x):
            return torch.stack([(x * x).sum(-1), torch.zeros(len(x))], dim=1)

    encoder = model.encoders["pf"]
    encoder.blocks[-1] = OnlyK(encoder.blocks[-1])
    encoder.norm = nn.Identity()
    model.fuse = lambda encoded: encoded["pf"][0][:, 1 + k]
    model.head = Square()
    hists, summary = gradcam_histograms(model, dc, [inputs], target=0, method=method, bins=10, extent=1.0,
                                        normalise="none")
    total = hists["fj1"].sums + hists["fj2"].sums
    edges = hists["fj1"].edges
    i, j = np.searchsorted(edges, eta) - 1, np.searchsorted(edges, phi) - 1
    assert total[i, j] > 0  # eta on the first axis, phi on the second
    total[i, j] = 0
    assert np.all(total == 0)
    assert hists["fj2"].sums.sum() == 0  # constituent k belongs to fj1 in every event
    assert summary["register_share"] == 0 and summary["events"] == 3


def test_outputs_finite_with_few_or_no_constituents(configs):
    dc = configs["jets_kin"]
    model, info = make_model(dc)
    inputs = two_jet_inputs(dc, info)  # includes (1, 2), (2, 0), (0, 3), (1, 1), (0, 0)
    maps = attention_maps(model, [inputs], k=K)
    for m in maps.values():
        for array in (m.acc.sums, m.acc.counts, m.acc.rest_sums):
            assert np.isfinite(array).all()
        mean = m.acc.mean()
        assert np.isfinite(mean[:, m.acc.counts > 0]).all()
    cams, logits = token_cam(model, inputs, target=0)
    cam, valid = cams["pf"]
    assert torch.isfinite(cam).all() and torch.isfinite(logits).all()
    assert torch.all(cam[~valid] == 0)
    for normalise in ("max", "none"):
        hists, summary = gradcam_histograms(model, dc, [inputs], target=0, normalise=normalise)
        for h in hists.values():
            assert np.isfinite(h.sums).all() and h.events == len(EVENTS)
        assert np.isfinite(summary["register_share"])
        n_constituents = sum(n1 + n2 for n1, n2, _ in EVENTS)
        assert sum(h.counts.sum() + h.outside for h in hists.values()) == n_constituents


# ---------------------------------------------------------------- the tools on real files


def record_figures(monkeypatch):
    """{file name: figure} of every figure the tools save (and still write)."""
    figures = {}
    save = Figure.savefig

    def recording_save(fig, path, *args, **kwargs):
        figures[Path(path).name] = fig
        return save(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_save)
    return figures


def shown_axes(fig):
    """The panels that show an image (not colour bars, secondary axes or switched-off panels)."""
    return [ax for ax in fig.axes if ax.get_images() and ax.axison]


@pytest.mark.slow
def test_tools_end_to_end(generated_dir, tmp_path, monkeypatch):
    """Both CLIs on generated ROOT files (read through weaver's pipeline) with an untrained small model: what the
    .npz files hold adds up over the events read, and the figures label what they show."""
    dc_path = REPO_ROOT / "data" / "jets_kin.yaml"
    data_config, samples = load_events(dc_path, [str(generated_dir / "*.root")], 12)
    assert len(samples["signal"]) == 12 and len(samples["background"]) == 12
    pf = samples["signal"].group("pf_features")
    assert pf.shape[1:] == (14, 128) and float(pf[:, 0].abs().max()) < 2.0  # aligned eta', not standardised

    model, _ = make_model(data_config)
    weights = tmp_path / "net_state.pt"
    torch.save(model.state_dict(), weights)
    options = sum((["-o", key, repr(value)] for key, value in SMALL.items()), [])
    common = ["-c", str(dc_path), "-m", str(weights), "--files", str(generated_dir / "*.root"), "--events", "12",
              "--batch-size", "8", "-o", "fusion", "'cross'", *options]
    figures = record_figures(monkeypatch)
    assert attention_main([*common, "--outdir", str(tmp_path / "att"), "--constituents", "5"]) == 0
    assert gradcam_main([*common, "--outdir", str(tmp_path / "gc"), "--bins", "8"]) == 0
    assert set(figures) == {path.name for path in [*tmp_path.glob("att/*.png"), *tmp_path.glob("gc/*.png")]}

    att = np.load(tmp_path / "att" / "attention_maps.npz")
    assert att["signal_self_pf_mean"].shape == (2, 1 + 2 * 5, 1 + 2 * 5)  # register + 5 ranks per fat jet
    for cls in ("signal", "background"):
        for name in ("self_pf", "self_ev", "cross"):
            events, sums = int(att[f"{cls}_{name}_events"]), att[f"{cls}_{name}_sums"]
            assert events == 12 and np.all(att[f"{cls}_{name}_counts"] <= events)
            # the register query of every event spreads a weight of 1 over the shown keys and the ranks beyond
            np.testing.assert_allclose(sums[:, 0].sum(-1) + att[f"{cls}_{name}_rest"][:, 0] * events, events,
                                       rtol=1e-5, err_msg=f"{cls} {name}")
    assert not np.allclose(att["signal_self_pf_mean"], att["background_self_pf_mean"], equal_nan=True)

    gc = np.load(tmp_path / "gc" / "gradcam.npz")
    for cls in ("signal", "background"):
        constituents = int(samples[cls].group("pf_mask").sum())  # the events the tool read: the same 12
        assert sum(gc[f"{cls}_{jet}_constituents"].sum() + gc[f"{cls}_{jet}_outside"] for jet in ("fj1", "fj2")) == constituents
        for jet in ("fj1", "fj2"):
            cam, counts = gc[f"{cls}_{jet}_cam_sums"], gc[f"{cls}_{jet}_constituents"]
            assert np.all(cam >= 0) and np.all(cam <= counts + 1e-6)  # --normalise max: each constituent in [0, 1]
            assert np.all(cam[counts == 0] == 0)
            np.testing.assert_allclose(gc[f"{cls}_{jet}_cam_per_event"], cam / 12)
    assert gc["signal_fj1_cam_per_event"].shape == (8, 8) and gc["signal_fj1_cam_sums"].sum() > 0

    cross = figures["cross_L1_mean.png"]
    assert "constituent" in cross.get_supxlabel() and "object" in cross.get_supylabel()
    signal_panel = shown_axes(cross)[0]
    assert [label.get_text() for label in signal_panel.get_yticklabels()] == list(att["cross_query_labels"])
    assert "signal (12 events)" in signal_panel.get_title()
    heads = figures["self_pf_L1_signal_heads.png"]
    assert [ax.get_title() for ax in shown_axes(heads)] == ["head 0", "head 1"]
    assert "signal (12 events)" in heads.get_suptitle()
    panels = shown_axes(figures["gradcam.png"])
    assert [ax.get_title().split(":")[0] for ax in panels] == ["signal", "background"]
    assert all("eta" in ax.get_xlabel() and "phi" in ax.get_ylabel() for ax in panels)
    for ax, cls in zip(panels, ("signal", "background")):  # the image is the histogram, eta along x
        shown = sum(gc[f"{cls}_{jet}_cam_per_event"] for jet in ("fj1", "fj2"))
        np.testing.assert_allclose(np.asarray(ax.get_images()[0].get_array()), shown.T, rtol=1e-6)
