"""The CPU training kernel of attention (multiscale/nn/cpu_kernels.py) against PyTorch's SDPA:
same outputs and gradients, a correct hand-written backward, the rule where it runs, and the one
switch (the network option ``cpu_kernels``) that puts it in a model."""

import pytest
import torch
import torch.nn.functional as F

from multiscale.nn import MultiHeadAttention, attention, cpu_kernels
from multiscale.nn.attention import key_padding_bias


def heads(n=3, h=2, length=5, keys=7, d=4, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, h, length, d, generator=g, dtype=dtype)
    k = torch.randn(n, h, keys, d, generator=g, dtype=dtype)
    v = torch.randn(n, h, keys, d, generator=g, dtype=dtype)
    valid = torch.ones(n, keys, dtype=torch.bool)
    valid[0, 3:] = False  # event 0: 3 valid keys
    valid[1, 1:] = False  # event 1: a single valid key
    return q, k, v, key_padding_bias(valid, dtype)


def test_bmm_kernel_equals_sdpa_with_padding_and_pair_bias():
    q, k, v, padding = heads()
    pair = torch.randn(3, 2, 5, 7, dtype=torch.float64)
    for bias in (padding, padding + pair):
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        inputs = [x.clone().requires_grad_() for x in (q, k, v)]
        assert cpu_kernels.bmm_pays(*inputs, bias)
        torch.testing.assert_close(cpu_kernels.attend(*inputs, bias), expected)


def test_bmm_kernel_backward_passes_gradcheck():
    """The hand-written backward against finite differences, including the gradient of a learned
    pairwise bias (ParT's pair embedding feeds one)."""
    q, k, v, padding = heads(n=2, length=4, keys=5, d=3)
    pair = torch.randn(2, 2, 4, 5, dtype=torch.float64)
    inputs = [x.clone().requires_grad_() for x in (q, k, v)]
    bias = (padding + pair).requires_grad_()
    assert torch.autograd.gradcheck(cpu_kernels.attend, (*inputs, bias))


@pytest.mark.parametrize("cross", [False, True])
def test_layer_gives_the_same_output_and_gradients_with_either_kernel(cross):
    torch.manual_seed(0)
    layer = MultiHeadAttention(16, 2, kv_dim=12 if cross else None)
    x = torch.randn(4, 6, 16)
    context = torch.randn(4, 9, 12) if cross else None
    valid = torch.rand(4, 9 if cross else 6) > 0.3
    valid[:, 0] = True
    bias = key_padding_bias(valid)
    results = []
    for kernel in (attention.attend, cpu_kernels.attend):
        layer.attend = kernel
        layer.zero_grad()
        out = layer(x, bias, context)
        out.square().sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in layer.parameters()]))
    torch.testing.assert_close(results[1][0], results[0][0], atol=1e-5, rtol=1e-4)
    for a, b in zip(results[1][1], results[0][1]):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_where_the_bmm_kernel_runs(monkeypatch):
    """CPU training with small score matrices (counted with the key count, which differs from the
    query count in cross-attention); not for inference, under autocast, for wide heads or for
    large matrices."""
    q, k, v, bias = heads(n=8, length=5, keys=40, d=4, dtype=torch.float32)
    q.requires_grad_()
    assert cpu_kernels.bmm_pays(q, k, v, bias)
    with torch.no_grad():
        assert not cpu_kernels.bmm_pays(q, k, v, bias)
    with torch.autocast("cpu"):
        assert not cpu_kernels.bmm_pays(q, k, v, bias)
    assert not cpu_kernels.bmm_pays(q.detach(), k, v, bias)  # nothing needs a gradient
    monkeypatch.setattr(cpu_kernels, "BMM_MAX_SCORES", 8 * 2 * 5 * 39)
    assert not cpu_kernels.bmm_pays(q, k, v, bias)
    monkeypatch.setattr(cpu_kernels, "BMM_MAX_HEAD_DIM", 3)
    monkeypatch.setattr(cpu_kernels, "BMM_MAX_SCORES", 8 * 2 * 5 * 40)
    assert not cpu_kernels.bmm_pays(q, k, v, bias)


def test_the_network_option_is_the_one_switch():
    """cpu_kernels=True puts the kernels in every attention and dropout layer, False in none; the
    dropout rate is the configured one either way."""
    from multiscale.nn import MultiScaleTransformer, NetworkConfig, StreamSpec

    streams = [StreamSpec("pf", 3, 6, False), StreamSpec("ev", 5, 9, False)]
    names = ("pf_features", "pf_mask", "ev_features", "ev_mask")
    for switch in (True, False):
        model = MultiScaleTransformer(streams, names, 2, NetworkConfig(cpu_kernels=switch, dropout=0.1))
        layers = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
        assert len(layers) == 3 + 2 + 2
        expected = cpu_kernels.attend if switch else attention.attend
        assert all(layer.attend is expected for layer in layers)
        drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
        kind = cpu_kernels.CpuDropout if switch else torch.nn.Dropout
        assert drops and all(type(m) is kind and m.p == 0.1 for m in drops)


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 1e-6, 1 - 1e-6])
def test_cpu_dropout_rate_scale_and_reproducibility(p):
    """The rate is p to within 1/65536 (and the native kernel where p rounds to 0 or 1), kept
    elements carry 1 / (1 - rate) so the expectation is kept, the gradient is mask x scale."""
    drop = cpu_kernels.CpuDropout(p).train()
    x = torch.ones(200, 100, 64, requires_grad=True)
    torch.manual_seed(3)
    out = drop(x)
    kept = out != 0
    rate = 1 - kept.float().mean().item()
    assert abs(rate - p) < 1 / 65536 + 5 * (p * (1 - p) / x.numel()) ** 0.5 + 1e-6
    if kept.any():
        scale = out[kept][0].item()
        assert abs(scale - 1 / (1 - p)) < 1e-3 / (1 - p)
        torch.testing.assert_close(out[kept], torch.full_like(out[kept], scale))
    out.sum().backward()
    torch.testing.assert_close(x.grad, out.detach())  # d out / d x = mask x scale
    torch.manual_seed(3)
    assert torch.equal(drop(x), out)
    assert not torch.equal(drop(x), out) or p > 0.999  # a new mask at every call
    assert torch.equal(drop.eval()(x), x)
