"""Multi-head attention on top of ``torch.nn.functional.scaled_dot_product_attention``.

Queries and keys may come from different token sets (cross-attention) and different widths.
A fused kernel is the default; the explicit softmax path runs only while weights are being
recorded for the interpretability tools (``recording_attention``).

Which fused kernel (``ATTENTION_KERNEL``): on CUDA, and on CPU for heads wider than
``BMM_MAX_HEAD_DIM``, PyTorch's SDPA. On CPU with the narrow heads of this model (8 features per
head) SDPA's flash kernel loops over (event, head, query block) and cost 2-3x more than
``bmm_attention`` (three batched GEMMs and a softmax, with a hand-written backward whose GEMMs all
produce wide outputs, the orientation MKL is fast at); see docs/performance.md for the figures.
"""

from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

# "auto": bmm_attention on CPU when head_dim <= BMM_MAX_HEAD_DIM, SDPA otherwise; "sdpa"; "bmm"
ATTENTION_KERNEL = "auto"
BMM_MAX_HEAD_DIM = 16


def key_padding_bias(valid: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """(N, S) bool, True = valid key -> additive (N, 1, 1, S) mask: 0 on valid keys, -inf on padding.

    Built once per batch and shared by every layer that attends to the same keys. The caller
    guarantees at least one valid key per row (each stream carries an always-valid register token),
    so no softmax ever runs over an empty set.
    """
    bias = torch.zeros(valid.shape, dtype=dtype, device=valid.device)
    bias = bias.masked_fill(~valid, float("-inf"))
    return bias[:, None, None, :]


def _bmm_forward(q, k, v, bias, scale):
    """q (B, L, d), k and v (B, S, d), bias broadcastable to (B, L, S) -> (out^T (B, d, L), weights)."""
    weights = torch.softmax(torch.baddbmm(bias, q, k.transpose(1, 2), alpha=scale), dim=-1)
    # out^T = v^T weights^T: a (d, L) output per head, several times faster in MKL than (L, d)
    return torch.bmm(v.transpose(1, 2), weights.transpose(1, 2)), weights


class _BmmAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bias, scale):
        out_t, weights = _bmm_forward(q, k, v, bias, scale)
        ctx.save_for_backward(q, k, v, weights)
        ctx.scale = scale
        ctx.bias_shape = bias.shape
        return out_t

    @staticmethod
    def backward(ctx, grad_out_t):
        q, k, v, weights = ctx.saved_tensors
        # every product below has a (d, .) or (L, S) output, never (L, d): see the module docstring
        grad_v = torch.bmm(grad_out_t, weights).transpose(1, 2)
        grad_weights = torch.bmm(grad_out_t.transpose(1, 2), v.transpose(1, 2))
        grad_scores = torch._softmax_backward_data(grad_weights, weights, -1, weights.dtype)
        grad_bias = None
        if ctx.needs_input_grad[3]:  # a learned pairwise bias
            grad_bias = grad_scores.sum_to_size(ctx.bias_shape)
        grad_q = torch.bmm(k.transpose(1, 2), grad_scores.transpose(1, 2)).mul_(ctx.scale).transpose(1, 2)
        grad_k = torch.bmm(q.transpose(1, 2), grad_scores).mul_(ctx.scale).transpose(1, 2)
        return grad_q, grad_k, grad_v, grad_bias, None


def bmm_attention(q, k, v, attn_bias):
    """Same result as ``F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)`` for
    q (N, H, L, d), k and v (N, H, S, d), attn_bias broadcastable to (N, H, L, S)."""
    n, heads, length, head_dim = q.shape
    keys = k.shape[2]
    q, k, v = (x.reshape(n * heads, x.shape[2], head_dim) for x in (q, k, v))
    bias = attn_bias.expand(n, heads, attn_bias.shape[2], keys).reshape(n * heads, attn_bias.shape[2], keys)
    scale = head_dim**-0.5
    if torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v, bias)) and not torch.jit.is_tracing():
        out_t = _BmmAttention.apply(q, k, v, bias, scale)
    else:  # inference and ONNX export: plain ops
        out_t = _bmm_forward(q, k, v, bias, scale)[0]
    return out_t.view(n, heads, head_dim, length).transpose(2, 3)


def _use_bmm(q: torch.Tensor) -> bool:
    if ATTENTION_KERNEL == "auto":
        return q.device.type == "cpu" and q.shape[-1] <= BMM_MAX_HEAD_DIM
    return ATTENTION_KERNEL == "bmm"


class MultiHeadAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, kv_dim: int | None = None):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention width {dim} is not divisible by the number of heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.kv_proj = nn.Linear(kv_dim or dim, 2 * dim)
        self.out_proj = nn.Linear(dim, dim)
        self.record_weights = False
        self.last_weights: torch.Tensor | None = None  # (N, H, L, S) when recorded

    def forward(self, x: torch.Tensor, context: torch.Tensor, attn_bias: torch.Tensor) -> torch.Tensor:
        """x: (N, L, D) queries; context: (N, S, Dkv) keys/values; attn_bias: additive, broadcastable
        to (N, H, L, S) (key padding, plus a pairwise interaction bias where used)."""
        n, length, dim = x.shape
        q = self.q_proj(x).view(n, length, self.num_heads, self.head_dim).transpose(1, 2)
        k, v = self.kv_proj(context).view(n, -1, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        attn_bias = attn_bias.to(q.dtype)
        if self.record_weights:
            scores = q @ k.transpose(-2, -1) * self.head_dim**-0.5 + attn_bias
            weights = scores.softmax(dim=-1)
            self.last_weights = weights
            out = weights @ v
        elif _use_bmm(q):
            out = bmm_attention(q, k, v, attn_bias)
        else:
            # no dropout on the attention matrix: it forces SDPA's slow math path and drawing the
            # (N, H, L, S) random mask cost a third of a CPU training step; blocks drop their outputs
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)
        return self.out_proj(out.transpose(1, 2).reshape(n, length, dim))


@contextmanager
def recording_attention(model: nn.Module):
    """Within the block, every attention layer of ``model`` keeps its weights in ``last_weights``.

    Outside it the fused kernel runs and nothing is stored, so normal training and inference pay
    nothing for interpretability.
    """
    layers = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    for layer in layers:
        layer.record_weights = True
    try:
        yield layers
    finally:
        for layer in layers:
            layer.record_weights = False
            layer.last_weights = None
