"""Multi-head attention: self-attention within a token set, cross-attention between two.

``attend(q, k, v, bias)`` computes softmax(q k^T / sqrt(d) + bias) v: PyTorch's
``scaled_dot_product_attention``, or plain MatMul / Softmax ops while exporting to ONNX. The
weights themselves are computed only inside ``recording_attention`` (interpretability). A faster
CPU training kernel lives in ``cpu_kernels.py``; the network option ``cpu_kernels`` swaps it in.
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


def attention_weights(q: torch.Tensor, k: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias): q (N, H, L, d), k (N, H, S, d) -> (N, H, L, S)."""
    return ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1) + bias).softmax(dim=-1)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias) v: q (N, H, L, d), k and v (N, H, S, d), bias broadcastable
    to (N, H, L, S) -> (N, H, L, d)."""
    if torch.onnx.is_in_onnx_export():  # plain ops: what onnxruntime runs fastest, and no fused op to map
        return attention_weights(q, k, bias) @ v
    # no dropout on the attention matrix: blocks drop their outputs (dropout here forces SDPA's slow path)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)


class MultiHeadAttention(nn.Module):
    """Self-attention (``kv_dim`` None: one packed q, k, v projection) or cross-attention (queries
    of width ``dim`` attend to a context of width ``kv_dim``)."""

    def __init__(self, dim: int, num_heads: int, kv_dim: int | None = None):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention width {dim} is not divisible by the number of heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.is_self_attention = kv_dim is None
        if self.is_self_attention:
            self.qkv_proj = nn.Linear(dim, 3 * dim)
        else:
            self.q_proj = nn.Linear(dim, dim)
            self.kv_proj = nn.Linear(kv_dim, 2 * dim)
        self.out_proj = nn.Linear(dim, dim)
        self.attend = attend  # cpu_kernels.use_cpu_kernels() swaps in the CPU training kernel
        self.record_weights = False  # set by recording_attention
        self.last_weights: torch.Tensor | None = None  # (N, H, L, S) when recorded

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, L, D) queries; attn_bias: additive, broadcastable to (N, H, L, S) (key padding, plus a
        pairwise bias where used); context: (N, S, Dkv) keys/values for cross-attention, None for self."""
        n, length, dim = x.shape
        q, k, v = self._heads(x, context)
        attn_bias = attn_bias.to(x.dtype)
        if self.record_weights:
            self.last_weights = attention_weights(q, k, attn_bias)
            out = self.last_weights @ v
        else:
            out = self.attend(q, k, v, attn_bias)
        return self.out_proj(out.transpose(1, 2).reshape(n, length, dim))

    def _heads(self, x, context):
        """q (N, H, L, d), k and v (N, H, S, d): views of the packed projections."""
        split = (self.num_heads, self.head_dim)
        if self.is_self_attention:
            if context is not None:
                raise ValueError("this is a self-attention layer: it takes no context")
            return self.qkv_proj(x).unflatten(-1, (3, *split)).permute(2, 0, 3, 1, 4).unbind(0)
        if context is None:
            raise ValueError("this is a cross-attention layer: it needs a context")
        q = self.q_proj(x).unflatten(-1, split).transpose(1, 2)
        k, v = self.kv_proj(context).unflatten(-1, (2, *split)).permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, v


@contextmanager
def recording_attention(model: nn.Module):
    """Within the block, every attention layer of ``model`` keeps its weights in ``last_weights``.

    Outside it the fused kernel runs and nothing is stored, so normal training and inference pay
    nothing for interpretability. Yields the layers.
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
