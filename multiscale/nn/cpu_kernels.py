"""CPU training kernels, switched on by the network option ``cpu_kernels``: attention and dropout.

On CPU, PyTorch's ``scaled_dot_product_attention`` backward (the flash kernel) loops over
(event, head, query block) and was the slowest part of a training step at this model's sizes.
Here attention is three batched GEMMs and a softmax in a feature-major layout (N*H, d, T), with a
hand-written backward whose GEMMs all produce wide outputs, the orientation MKL is fast at.
It computes the same function (tests/test_kernels.py) and runs only where it was measured to pay
(docs/performance.md): CPU, gradients on, no autocast, narrow heads and score matrices up to
``BMM_MAX_SCORES`` numbers. Everywhere else (inference, GPU, export) ``attention.attend`` runs.

PyTorch's CPU dropout draws one double-precision Bernoulli number per element, serially: a fifth
of a CPU training step of the matched configuration. ``CpuDropout`` takes the random 16 bits of
four elements from one 64-bit draw, so the rate is p rounded to a multiple of 1/65536 (0.1 becomes
0.100006, 0.2 becomes 0.199997), and scales the kept elements by 1 / (1 - rounded p), which keeps
the expectation. On other devices, in eval mode and at rates that round to 0 or 1: ``nn.Dropout``.
"""

import torch
import torch.nn as nn

from . import attention

# heads up to 8 wide (every preset's): with 4 heads of 16 over 129 tokens the kernel (engaged there,
# the score count being half that of 8 heads) trained `cross` 34% slower than SDPA (docs/performance.md)
BMM_MAX_HEAD_DIM = 8
# N*H*L*S numbers; the crossover measured on a 2-core AMD EPYC (32 MB L3): 9.6M (128 events x 8
# heads x 97 x 97) still 18% faster with bmm, 17M (128 x 8 x 129 x 129) 21% slower
BMM_MAX_SCORES = 12 * 2**20


class _BmmAttention(torch.autograd.Function):
    """qt (B, d, L), kt and vt (B, d, S), bias broadcastable to (B, L, S) -> out_t (B, d, L)."""

    @staticmethod
    def forward(ctx, qt, kt, vt, bias, scale):
        weights = torch.softmax(torch.baddbmm(bias, qt.transpose(1, 2), kt, alpha=scale), dim=-1)
        ctx.save_for_backward(qt, kt, vt, weights)
        ctx.scale = scale
        ctx.bias_shape = bias.shape
        # out^T = v^T weights^T: a (d, L) output per head, several times faster in MKL than (L, d)
        return torch.bmm(vt, weights.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad_out_t):
        qt, kt, vt, weights = ctx.saved_tensors
        # every product has a (d, .) or (L, S) output, never (L, d): see the module docstring
        grad_vt = torch.bmm(grad_out_t, weights)
        grad_weights = torch.bmm(grad_out_t.transpose(1, 2), vt)
        grad_scores = torch._softmax_backward_data(grad_weights, weights, -1, weights.dtype)
        grad_bias = None
        if ctx.needs_input_grad[3]:  # a learned pairwise bias
            grad_bias = grad_scores.sum_to_size(ctx.bias_shape)
        grad_qt = torch.bmm(kt, grad_scores.transpose(1, 2)).mul_(ctx.scale)
        grad_kt = torch.bmm(qt, grad_scores).mul_(ctx.scale)
        return grad_qt, grad_kt, grad_vt, grad_bias, None


def bmm_pays(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> bool:
    """Where the bmm kernel was measured faster than SDPA: CPU training at small sizes."""
    n, heads, length, head_dim = q.shape
    return (
        q.device.type == "cpu"
        and torch.is_grad_enabled()
        and any(x.requires_grad for x in (q, k, v, bias))
        and not torch.is_autocast_enabled("cpu")
        and not torch.jit.is_tracing()
        and head_dim <= BMM_MAX_HEAD_DIM
        and n * heads * length * k.shape[2] <= BMM_MAX_SCORES
    )


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``attention.attend`` with the bmm kernel where it pays; same arguments and result."""
    if not bmm_pays(q, k, v, bias):
        return attention.attend(q, k, v, bias)
    n, heads, length, head_dim = q.shape
    keys = k.shape[2]

    def feature_major(x):  # (N, H, T, d) -> (N*H, d, T)
        return x.transpose(2, 3).reshape(n * heads, head_dim, x.shape[2])

    bias = bias.expand(n, heads, length, keys).reshape(n * heads, length, keys)
    out_t = _BmmAttention.apply(feature_major(q), feature_major(k), feature_major(v), bias, head_dim**-0.5)
    return out_t.view(n, heads, head_dim, length).transpose(2, 3)


class CpuDropout(nn.Dropout):
    """``nn.Dropout`` with 16-bit random draws on CPU (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        threshold = round(self.p * 65536)
        if not self.training or x.device.type != "cpu" or not 0 < threshold < 65536:
            return super().forward(x)
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
        keep = bits.view(torch.int16)[:n].view(x.shape) >= threshold - 32768  # P = 1 - threshold / 65536
        return x * keep.to(x.dtype).mul_(65536 / (65536 - threshold))


def use_cpu_kernels(model: nn.Module) -> nn.Module:
    """Every attention layer of ``model`` uses ``attend`` above, every dropout ``CpuDropout``; returns ``model``."""
    for module in model.modules():
        if isinstance(module, attention.MultiHeadAttention):
            module.attend = attend
        elif type(module) is nn.Dropout:
            module.__class__ = CpuDropout  # same module and rate, only the CPU forward differs
    return model
