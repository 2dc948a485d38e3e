"""Multi-head attention on top of ``torch.nn.functional.scaled_dot_product_attention``.

Queries and keys may come from different token sets (cross-attention) and different widths.
The fused SDPA kernel is the default; the explicit softmax path runs only while weights are
being recorded for the interpretability tools (``recording_attention``).
"""

from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F


def key_padding_bias(valid: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """(N, S) bool, True = valid key -> additive (N, 1, 1, S) mask: 0 on valid keys, -inf on padding.

    Built once per batch and shared by every layer that attends to the same keys. The caller
    guarantees at least one valid key per row (each stream carries an always-valid register token),
    so no softmax ever runs over an empty set.
    """
    bias = torch.zeros(valid.shape, dtype=dtype, device=valid.device)
    bias = bias.masked_fill(~valid, float("-inf"))
    return bias[:, None, None, :]


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
