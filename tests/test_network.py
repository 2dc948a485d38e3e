"""The network: every data config and fusion builds and learns; masking, permutation symmetry,
chained cross-attention, empty jets, and ONNX export checked against onnxruntime."""

import itertools
from pathlib import Path

import numpy as np

import pytest
import torch

from multiscale.nn import recording_attention
from multiscale.nn.config import PRESETS, resolve
from multiscale.onnx_export import export_like_weaver, max_abs_difference, onnx_session
from multiscale.synthetic import synthetic_inputs
from multiscale.weaver_io import build_model, load_data_config

REPO_ROOT = Path(__file__).resolve().parents[1]

CONFIGS = {
    "jets_kin": ("cross", "concat"),
    "jet1_jet2_kin": ("cross", "concat"),
    "jets": ("cross",),  # one stream: plain self-attention whatever the fusion
    "kin": ("cross",),
}
CASES = [(cfg, fusion) for cfg, fusions in CONFIGS.items() for fusion in fusions]
SMALL = dict(jet_dim=16, jet_heads=2, jet_layers=2, obj_dim=16, obj_heads=2, obj_layers=1, cross_layers=2,
             mlp_dims=(16,), dropout=0.0, pair_bias=True)  # the pairwise bias on: the harder case for masking and ONNX


@pytest.fixture(scope="module")
def data_configs():
    return {name: load_data_config(REPO_ROOT / "data" / f"{name}.yaml") for name in CONFIGS}


def make(data_configs, cfg, fusion="cross", seed=0, **options):
    torch.manual_seed(seed)
    model, info = build_model(data_configs[cfg], fusion=fusion, **{**SMALL, **options})
    return model.eval(), info


def inputs_for(info, batch=8, seed=1, **kwargs):
    return synthetic_inputs(info, batch, generator=torch.Generator().manual_seed(seed), **kwargs)


@pytest.mark.parametrize("cfg,fusion", CASES)
@pytest.mark.slow
def test_trains_with_falling_loss(data_configs, cfg, fusion):
    model, info = make(data_configs, cfg, fusion)
    model.train()
    # few constituents per particle stream: the loss falls as it does at full length, at a fraction of the cost
    short = {name.rpartition("_")[0]: 16 for name in info["input_names"] if not name.startswith("ev_")}
    inputs = inputs_for(info, batch=32, num_tokens=short)
    labels = (inputs[0][:, 0, 0] > 0).long()  # learnable: the sign of one input feature
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(*inputs), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def perturbed(inputs, info, group, channels):
    """``inputs`` with ``channels`` of input ``group`` shifted on every token."""
    out = [x.clone() for x in inputs]
    out[info["input_names"].index(group)][:, channels] += 1.0
    return out


@pytest.mark.parametrize("preset", list(PRESETS))
def test_a_preset_reads_the_features_it_keeps_and_only_those(data_configs, preset):
    """A preset's feature limits (jet_max_features for particle streams, obj_max_features for objects): the last
    feature kept moves the output, the ones beyond the limit do not; each event's output is its own (batch of 3 = one
    by one)."""
    config = resolve(preset)
    for cfg, fusion in CASES:
        torch.manual_seed(0)
        model, info = build_model(data_configs[cfg], fusion=fusion, preset=preset)
        model.eval()
        short = {name.rpartition("_")[0]: 12 for name in info["input_names"] if not name.startswith("ev_")}
        inputs = inputs_for(info, batch=3, num_tokens=short)  # few constituents: the full-size presets run fast
        with torch.no_grad():
            output = model(*inputs)
            alone = torch.cat([model(*[x[i:i + 1] for x in inputs]) for i in range(3)])
            torch.testing.assert_close(alone, output, atol=1e-5, rtol=1e-4)
            for group in (name for name in info["input_names"] if name.endswith("_features")):
                limit = config.obj_max_features if group == "ev_features" else config.jet_max_features
                features = inputs[info["input_names"].index(group)].shape[1]
                kept = min(limit or features, features)
                # the last feature kept (one at a time: a uniform shift of every feature can cancel in a norm)
                assert not torch.allclose(model(*perturbed(inputs, info, group, [kept - 1])), output), (cfg, group)
                if kept < features:
                    torch.testing.assert_close(model(*perturbed(inputs, info, group, slice(kept, None))), output,
                                               atol=1e-6, rtol=1e-5, msg=f"{cfg} {group}: features beyond {kept} read")


def test_paper_wide_is_paper_with_two_heads_of_twenty_everywhere(data_configs):
    """The preset whose physics parity docs/performance.md measured: only the heads differ from 'paper'."""
    from dataclasses import asdict

    from multiscale.nn import resolve

    wide, paper = asdict(resolve("paper_wide")), asdict(resolve("paper"))
    assert {k for k in wide if wide[k] != paper[k]} == {"jet_heads", "obj_heads"}
    model, _ = build_model(data_configs["jets_kin"], fusion="cross", preset="paper_wide")
    widths = {(layer.num_heads, layer.head_dim) for layers in model.attention_layers().values() for layer in layers}
    assert widths == {(2, 20)}


def test_onnx_export_of_paper_wide_matches_pytorch(data_configs, tmp_path):
    """20-wide heads (SDPA in training, not the 8-wide CPU kernel) export like the others: batch 1 and
    17, an event without constituents."""
    torch.manual_seed(0)
    model, info = build_model(data_configs["jets_kin"], fusion="cross", preset="paper_wide", for_inference=True)
    path = tmp_path / "model.onnx"
    export_like_weaver(model.eval(), info, path)
    session = onnx_session(path)
    for batch in (1, 17):
        inputs = inputs_for(info, batch=batch, seed=batch, min_valid=0)
        for i, name in enumerate(info["input_names"]):
            if name.startswith("pf_"):
                inputs[i][0] = 0  # the first event: no constituent (all-zero four-vectors, every token masked)
        diff = max_abs_difference(model, session, info["input_names"], inputs)
        assert diff < 1e-4, f"batch {batch}: |torch - onnx| = {diff}"


def _permute_valid(inputs, info, prefix, generator):
    """Shuffle the valid tokens of stream ``prefix`` (same permutation for all its groups)."""
    names = info["input_names"]
    mask = inputs[names.index(f"{prefix}_mask")][:, 0]
    out = [x.clone() for x in inputs]
    for event in range(mask.shape[0]):
        n = int(mask[event].sum())
        perm = torch.randperm(n, generator=generator)
        for i, name in enumerate(names):
            if name.startswith(prefix + "_"):
                out[i][event, :, :n] = inputs[i][event, :, perm]
    return out


@pytest.mark.parametrize("cfg,fusion", [("jets_kin", "cross"), ("jet1_jet2_kin", "cross"), ("jets_kin", "concat")])
def test_permuting_constituents_leaves_output_unchanged(data_configs, cfg, fusion):
    model, info = make(data_configs, cfg, fusion)
    inputs = inputs_for(info)
    prefix = info["input_names"][0].rpartition("_")[0]
    permuted = _permute_valid(inputs, info, prefix, torch.Generator().manual_seed(3))
    assert not torch.equal(permuted[0], inputs[0])
    with torch.no_grad():
        torch.testing.assert_close(model(*permuted), model(*inputs), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cfg,fusion", CASES)
def test_padded_slots_do_not_matter(data_configs, cfg, fusion):
    model, info = make(data_configs, cfg, fusion)
    inputs = inputs_for(info)
    names = info["input_names"]
    changed = [x.clone() for x in inputs]
    for i, name in enumerate(names):
        if not name.endswith("_mask"):
            prefix = name.rpartition("_")[0]
            padded = inputs[names.index(f"{prefix}_mask")] == 0  # (N, 1, P)
            noise = torch.rand_like(changed[i]) * 50 + 1
            changed[i] = torch.where(padded.expand_as(changed[i]), noise, changed[i])
    assert any(not torch.equal(a, b) for a, b in zip(changed, inputs))
    with torch.no_grad():
        torch.testing.assert_close(model(*changed), model(*inputs), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cfg,fusion", CASES)
def test_an_event_without_constituents_is_scored_on_what_it_has(data_configs, cfg, fusion):
    """No token in any particle stream: a finite output that depends on the objects only (with no objects either,
    one output for every such event)."""
    model, info = make(data_configs, cfg, fusion)
    inputs = inputs_for(info)
    for i, name in enumerate(info["input_names"]):
        if not name.startswith("ev_"):
            inputs[i][:3] = 0  # first three events: no token at all in any particle stream
    with torch.no_grad():
        out = model(*inputs)
        assert torch.isfinite(out).all()
        if "ev_features" in info["input_names"]:
            other_objects = perturbed(inputs, info, "ev_features", [0])
            assert not torch.allclose(model(*other_objects)[:3], out[:3])
        else:  # nothing left to tell the three apart
            torch.testing.assert_close(out[:3], out[:1].expand(3, -1))
            assert not torch.allclose(out[3:], out[:1].expand(len(out) - 3, -1))


def test_cross_attention_layers_are_chained(data_configs):
    model, info = make(data_configs, "jets_kin", "cross")
    inputs = inputs_for(info)
    seen = []
    hook = model.cross_blocks[1].register_forward_hook(lambda mod, args, out: seen.append(out.clone()))
    with torch.no_grad():
        model(*inputs)
        torch.nn.init.normal_(model.cross_blocks[0].attn.out_proj.weight)  # change layer 1 only
        model(*inputs)
    hook.remove()
    assert not torch.allclose(seen[0], seen[1]), "layer 2 does not see layer 1's output"


def test_recording_attention_gives_the_same_output_and_normalised_weights(data_configs):
    model, info = make(data_configs, "jets_kin", "cross")
    inputs = inputs_for(info)
    with torch.no_grad():
        fast = model(*inputs)
        with recording_attention(model) as layers:
            slow = model(*inputs)
            weights = [layer.last_weights for layer in layers]
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-4)
    assert all(w is not None for w in weights)
    torch.testing.assert_close(weights[0].sum(-1), torch.ones_like(weights[0].sum(-1)))
    assert all(layer.last_weights is None for layer in layers), "weights must not be kept after the block"


@pytest.mark.parametrize("cfg,fusion", CASES)
def test_onnx_export_matches_pytorch(data_configs, cfg, fusion, tmp_path):
    torch.manual_seed(0)
    model, info = build_model(data_configs[cfg], fusion=fusion, for_inference=True, **SMALL)
    model.eval()
    path = tmp_path / "model.onnx"
    export_like_weaver(model, info, path)
    session = onnx_session(path)
    prefixes = sorted({n.rpartition("_")[0] for n in info["input_names"]})
    for batch, tokens in itertools.product((1, 3, 17), (5, None)):
        # a different token count per particle stream, and one event with an empty particle stream
        num_tokens = {p: tokens for p in prefixes if p != "ev" and tokens}
        inputs = inputs_for(info, batch=batch, seed=batch, num_tokens=num_tokens, min_valid=0)
        diff = max_abs_difference(model, session, info["input_names"], inputs)
        assert diff < 1e-4, f"batch {batch}, tokens {tokens}: |torch - onnx| = {diff}"
