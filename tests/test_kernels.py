"""The fast paths of the network against their references: the CPU bmm attention kernel and its
hand-written backward, the ONNX attention graph with the folded padding bias, the kernel choice,
the CPU dropout mask, and the malloc tuning switch."""

import io
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from multiscale.nn import attention as A
from multiscale.nn.attention import MultiHeadAttention, attention_kernel, bmm_attention, explicit_attention
from multiscale.nn.blocks import Dropout


def heads(n=3, h=2, length=5, keys=7, d=4, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, h, length, d, generator=g, dtype=dtype)
    k = torch.randn(n, h, keys, d, generator=g, dtype=dtype)
    v = torch.randn(n, h, keys, d, generator=g, dtype=dtype)
    valid = torch.ones(n, keys, dtype=torch.bool)
    valid[0, 3:] = False  # event 0: 3 valid keys
    valid[1, 1:] = False  # event 1: a single valid key
    return q, k, v, A.key_padding_bias(valid, dtype)


def feature_major(x):
    """(N, H, T, d) -> (N*H, d, T), the layout of bmm_attention."""
    return x.transpose(2, 3).reshape(-1, x.shape[3], x.shape[2])


def test_bmm_attention_equals_sdpa_with_padding_and_pair_bias():
    q, k, v, padding = heads()
    pair = torch.randn(3, 2, 5, 7, dtype=torch.float64)
    for bias in (padding, padding + pair):
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        got = bmm_attention(feature_major(q), feature_major(k), feature_major(v), bias, num_heads=2)
        torch.testing.assert_close(got.view(3, 2, 4, 5).transpose(2, 3), expected)


def test_bmm_attention_backward_passes_gradcheck():
    """The hand-written backward against finite differences, including the gradient of a learned
    pairwise bias (ParT's pair embedding feeds one)."""
    q, k, v, padding = heads(n=2, length=4, keys=5, d=3)
    pair = torch.randn(2, 2, 4, 5, dtype=torch.float64)
    inputs = [feature_major(x).clone().requires_grad_() for x in (q, k, v)]
    bias = (padding + pair).requires_grad_()
    assert torch.autograd.gradcheck(lambda qt, kt, vt, b: bmm_attention(qt, kt, vt, b, num_heads=2),
                                    (*inputs, bias))


def test_onnx_graph_with_folded_padding_equals_the_plain_one():
    q, k, v, padding = heads(dtype=torch.float32)
    plain, weights = explicit_attention(q, k, v, padding)
    folded, folded_weights = explicit_attention(q, k, v, padding, fold_padding=True)
    torch.testing.assert_close(folded, plain)
    torch.testing.assert_close(folded, F.scaled_dot_product_attention(q, k, v, attn_mask=padding))
    assert torch.all(folded_weights[padding.expand_as(folded_weights) < 0] == 0)  # padded keys: exactly 0


@pytest.mark.parametrize("cross", [False, True])
def test_every_kernel_gives_the_same_layer_output_and_gradients(cross):
    torch.manual_seed(0)
    layer = MultiHeadAttention(16, 2, kv_dim=12 if cross else None)
    x = torch.randn(4, 6, 16)
    context = torch.randn(4, 9, 12) if cross else None
    valid = torch.rand(4, 9 if cross else 6) > 0.3
    valid[:, 0] = True
    bias = A.key_padding_bias(valid)
    results = {}
    for kernel in ("sdpa", "bmm"):
        layer.zero_grad()
        with attention_kernel(kernel):
            out = layer(x, bias, context)
        out.square().sum().backward()
        results[kernel] = (out.detach(), [p.grad.clone() for p in layer.parameters()])
    torch.testing.assert_close(results["bmm"][0], results["sdpa"][0], atol=1e-5, rtol=1e-4)
    for a, b in zip(results["bmm"][1], results["sdpa"][1]):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_kernel_choice(monkeypatch):
    """bmm for CPU training with small score matrices (counted with the key count, which differs
    from the query count in cross-attention); SDPA for inference, under autocast and for large
    matrices; the explicit graph in ONNX export."""
    layer = MultiHeadAttention(16, 2)
    cross = MultiHeadAttention(16, 2, kv_dim=8)
    x, bias = torch.randn(8, 5, 16), torch.zeros(8, 1, 1, 5)
    context, cross_bias = torch.randn(8, 40, 8), torch.zeros(8, 1, 1, 40)
    with attention_kernel("auto"):
        used = []
        for grad, autocast in ((True, False), (False, False), (True, True)):
            with torch.set_grad_enabled(grad), torch.autocast("cpu", enabled=autocast):
                layer(x, bias)
            used.append(layer.last_kernel)
        assert used == ["bmm", "sdpa", "sdpa"]
        monkeypatch.setattr(A, "BMM_MAX_SCORES", 8 * 2 * 5 * 5)  # self-attention fits, cross (5 x 40) does not
        layer(x, bias)
        cross(x, cross_bias, context)
        assert (layer.last_kernel, cross.last_kernel) == ("bmm", "sdpa")
        monkeypatch.setattr(A, "BMM_MAX_SCORES", 8 * 2 * 5 * 40)
        cross(x, cross_bias, context)
        assert cross.last_kernel == "bmm"
        torch.onnx.export(layer, (x, bias), io.BytesIO(), dynamo=False)
        assert layer.last_kernel == "explicit"


def test_checkpoints_with_separate_q_and_kv_projections_still_load():
    """State dicts written before q, k, v were packed (q_proj + kv_proj, kv as (2, H, d) rows):
    the loaded layer must compute what that layout computed."""
    torch.manual_seed(0)
    old = {"q_proj.weight": torch.randn(16, 16), "q_proj.bias": torch.randn(16),
           "kv_proj.weight": torch.randn(32, 16), "kv_proj.bias": torch.randn(32),
           "out_proj.weight": torch.randn(16, 16), "out_proj.bias": torch.randn(16)}
    layer = MultiHeadAttention(16, 2)
    layer.load_state_dict(old)
    x = torch.randn(3, 6, 16)
    bias = torch.zeros(3, 1, 1, 6)
    # the old layer's forward, written out
    q = F.linear(x, old["q_proj.weight"], old["q_proj.bias"]).view(3, 6, 2, 8).transpose(1, 2)
    k, v = F.linear(x, old["kv_proj.weight"], old["kv_proj.bias"]).view(3, 6, 2, 2, 8).permute(2, 0, 3, 1, 4)
    expected = F.linear(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(3, 6, 16),
                        old["out_proj.weight"], old["out_proj.bias"])
    with torch.no_grad():
        torch.testing.assert_close(layer(x, bias), expected, atol=1e-5, rtol=1e-5)


def test_dropout_falls_back_to_the_native_kernel_for_extreme_rates():
    x = torch.ones(100, 1000)
    torch.manual_seed(0)
    low = Dropout(0.001).train()(x)  # rounds to 0/256: must not switch dropout off
    assert 0 < (low == 0).float().mean().item() < 0.01
    high = Dropout(0.999).train()(x)  # rounds to 256/256: must not divide by zero
    assert 0.99 < (high == 0).float().mean().item() < 1


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5])
def test_dropout_rate_scale_and_reproducibility(p):
    drop = Dropout(p).train()
    x = torch.ones(200, 100, 64, requires_grad=True)
    torch.manual_seed(3)
    out = drop(x)
    kept = out != 0
    rate = 1 - kept.float().mean().item()
    rounded = round(p * 256) / 256
    assert abs(rate - rounded) < 0.004  # 1.28M draws: ~10 standard deviations
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / (1 - rounded)))
    assert abs(out.mean().item() - 1.0) < 0.01  # the expectation is kept
    out.sum().backward()
    torch.testing.assert_close(x.grad, out.detach())  # d out / d x = mask x scale
    torch.manual_seed(3)
    assert torch.equal(drop(x), out)
    assert not torch.equal(drop(x), out)  # a new mask at every call
    assert torch.equal(drop.eval()(x), x)


def test_malloc_tuning_can_be_switched_off():
    code = "import multiscale.nn as nn; print(nn.tune_malloc())"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "MULTISCALE_MALLOC_TUNING"}
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**env, "MULTISCALE_MALLOC_TUNING": "0"})
    assert on.stdout.strip() == "True" and off.stdout.strip() == "False"


@pytest.mark.parametrize("affine,bias", [(True, True), (True, False), (False, False)])
def test_layer_norm_fast_backward_equals_native(affine, bias):
    from multiscale.nn.layernorm import LayerNorm, replace_layer_norms

    torch.manual_seed(0)
    native = torch.nn.LayerNorm(12, elementwise_affine=affine, bias=bias)
    if affine:
        torch.nn.init.normal_(native.weight)
    if bias:
        torch.nn.init.normal_(native.bias)
    fast = replace_layer_norms(torch.nn.Sequential(native))[0]
    assert type(fast) is LayerNorm and fast is not native
    x = torch.randn(5, 7, 12, requires_grad=True)
    grad = torch.randn(5, 7, 12)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the fast path runs with more than one thread only
    try:
        results = []
        for layer in (native, fast):
            x.grad = None
            layer.zero_grad()
            out = layer(x)
            out.backward(grad)
            results.append([out.detach(), x.grad.clone()] + [p.grad.clone() for p in layer.parameters()])
        assert type(out.grad_fn).__name__ == "_LayerNormFunctionBackward"
        assert torch.get_num_threads() == 2  # the one-thread section restores the setting
    finally:
        torch.set_num_threads(threads)
    assert len(results[0]) == 2 + affine + bias
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
