"""Multi-head attention: self-attention within a token set, cross-attention between two.

Three interchangeable kernels compute softmax(q k^T / sqrt(d) + bias) v:

- ``F.scaled_dot_product_attention`` (SDPA): on CUDA, and for CPU inference;
- ``bmm_attention``: on CPU when gradients are computed (training, Grad-CAM) outside autocast,
  for narrow heads (``BMM_MAX_HEAD_DIM``) and score matrices up to ``BMM_MAX_SCORES`` numbers;
  there SDPA's flash backward, which loops over (event, head, query block), was a third slower.
  Three batched GEMMs and a softmax in a feature-major layout (N*H, d, T), with a hand-written
  backward whose GEMMs all produce wide outputs, the orientation MKL is fast at.
  ``BMM_MAX_SCORES`` is the crossover measured on this project's machine: with larger (N*H, L, S)
  score matrices the flash kernel won (docs/performance.md has the figures);
- ``explicit_attention`` (MatMul, Softmax, MatMul): in ONNX export (in the head-major layout,
  1.5-2.0x faster in onnxruntime than the exported bmm graph for the cross model), and inside
  ``recording_attention``, where it keeps the weights for the interpretability tools; normal
  training and inference never compute or store them.
"""

import os
import warnings
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

# "auto" (the rule of the module docstring), or force one kernel: "sdpa", "bmm"
KERNELS = ("auto", "sdpa", "bmm")
ATTENTION_KERNEL = os.environ.get("MULTISCALE_ATTENTION_KERNEL", "auto")
if ATTENTION_KERNEL not in KERNELS:
    raise ValueError(f"MULTISCALE_ATTENTION_KERNEL must be one of {KERNELS}, got {ATTENTION_KERNEL!r}")
BMM_MAX_HEAD_DIM = 16
# N*H*L*S numbers; the crossover measured on a 2-core AMD EPYC (32 MB L3): 9.6M (128 events x 8
# heads x 97 x 97) still 18% faster with bmm, 17M (128 x 8 x 129 x 129) 21% slower
BMM_MAX_SCORES = 12 * 2**20


def key_padding_bias(valid: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """(N, S) bool, True = valid key -> additive (N, 1, 1, S) mask: 0 on valid keys, -inf on padding.

    Built once per batch and shared by every layer that attends to the same keys. The caller
    guarantees at least one valid key per row (each stream carries an always-valid register token),
    so no softmax ever runs over an empty set.
    """
    bias = torch.zeros(valid.shape, dtype=dtype, device=valid.device)
    bias = bias.masked_fill(~valid, float("-inf"))
    return bias[:, None, None, :]


# ------------------------------------------------------------------------------ bmm kernel (CPU)


def _bmm_forward(qt, kt, vt, bias, scale):
    """qt (B, d, L), kt and vt (B, d, S), bias broadcastable to (B, L, S) -> (out_t (B, d, L), weights)."""
    weights = torch.softmax(torch.baddbmm(bias, qt.transpose(1, 2), kt, alpha=scale), dim=-1)
    # out^T = v^T weights^T: a (d, L) output per head, several times faster in MKL than (L, d)
    return torch.bmm(vt, weights.transpose(1, 2)), weights


class _BmmAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, qt, kt, vt, bias, scale):
        out_t, weights = _bmm_forward(qt, kt, vt, bias, scale)
        ctx.save_for_backward(qt, kt, vt, weights)
        ctx.scale = scale
        ctx.bias_shape = bias.shape
        return out_t

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


def bmm_attention(qt, kt, vt, attn_bias, num_heads):
    """softmax(q k^T / sqrt(d) + bias) v in the feature-major layout.

    qt (N*H, d, L), kt and vt (N*H, d, S); attn_bias broadcastable to (N, H, L, S). Returns (N*H, d, L).
    """
    batch_heads, head_dim, keys = kt.shape
    n = batch_heads // num_heads
    bias = attn_bias.expand(n, num_heads, attn_bias.shape[2], keys).reshape(batch_heads, attn_bias.shape[2], keys)
    scale = head_dim**-0.5
    if torch.is_grad_enabled() and any(x.requires_grad for x in (qt, kt, vt, bias)) and not torch.jit.is_tracing():
        return _BmmAttention.apply(qt, kt, vt, bias, scale)
    return _bmm_forward(qt, kt, vt, bias, scale)[0]  # inference and ONNX export: plain ops


# ------------------------------------------------------------------------ explicit (ONNX, weights)


def explicit_attention(q, k, v, attn_bias, fold_padding=False):
    """softmax(q k^T / sqrt(d) + bias) v with plain MatMul / Softmax ops; q (N, H, L, d), k and v
    (N, H, S, d). Returns (out (N, H, L, d), weights (N, H, L, S)).

    ``fold_padding`` (ONNX export): a key-padding bias (N, 1, 1, S) becomes an extra feature (1 for
    the queries, the bias for the keys), so that the first MatMul adds it and onnxruntime skips an
    Add over the (N, H, L, S) scores (10% faster for the cross model). -inf becomes a large finite
    value: no 0 x inf can appear inside a GEMM.
    """
    scale = q.shape[-1] ** -0.5
    with warnings.catch_warnings():  # static while tracing: the bias is (N, 1, 1, S) or (N, H, L, S)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        padding_only = bool(attn_bias.shape[1] == 1 and attn_bias.shape[2] == 1)
    if fold_padding and padding_only:
        n, heads, keys = k.shape[0], k.shape[1], k.shape[2]
        padding = attn_bias.clamp(min=torch.finfo(attn_bias.dtype).min / 2)[:, :, 0, :, None]
        q = torch.cat([q * scale, torch.ones_like(q[..., :1])], dim=-1)
        k = torch.cat([k, padding.expand(n, heads, keys, 1)], dim=-1)
        scores = q @ k.transpose(-2, -1)
    else:
        scores = (q * scale) @ k.transpose(-2, -1) + attn_bias
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


# ---------------------------------------------------------------------------------- the module


def _split_heads(projections, feature_major):
    """Projections (N, T, n, H, d) -> their q, k, v parts in order: (N*H, d, T) tensors for
    ``bmm_attention`` (one copy per projection) or (N, H, T, d) views for SDPA."""
    parts = []
    for p in projections:
        if feature_major:
            parts += p.permute(2, 0, 3, 4, 1).reshape(p.shape[2], -1, p.shape[4], p.shape[1]).unbind(0)
        else:
            parts += p.permute(2, 0, 3, 1, 4).unbind(0)
    return parts


def _pack_old_projections(state_dict, prefix, *args):
    """Checkpoints saved before q, k, v were packed hold a self-attention layer's ``q_proj`` and
    ``kv_proj``: join them into ``qkv_proj`` (same rows in the same order), so they still load."""
    for kind in ("weight", "bias"):
        q, kv = f"{prefix}q_proj.{kind}", f"{prefix}kv_proj.{kind}"
        if q in state_dict and kv in state_dict:
            state_dict[f"{prefix}qkv_proj.{kind}"] = torch.cat([state_dict.pop(q), state_dict.pop(kv)])


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
        if self.is_self_attention:
            self._register_load_state_dict_pre_hook(_pack_old_projections)
        self.record_weights = False
        self.last_weights: torch.Tensor | None = None  # (N, H, L, S) when recorded
        self.last_kernel: str | None = None  # "bmm", "sdpa" or "explicit": which one the last call ran

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, L, D) queries; attn_bias: additive, broadcastable to (N, H, L, S) (key padding, plus a
        pairwise bias where used); context: (N, S, Dkv) keys/values for cross-attention, None for self."""
        n, length, dim = x.shape
        split = (self.num_heads, self.head_dim)
        if self.is_self_attention:
            if context is not None:
                raise ValueError("this is a self-attention layer: it takes no context")
            packed = [self.qkv_proj(x).view(n, length, 3, *split)]
        else:
            if context is None:
                raise ValueError("this is a cross-attention layer: it needs a context")
            packed = [self.q_proj(x).view(n, length, 1, *split), self.kv_proj(context).view(n, context.shape[1], 2, *split)]
        attn_bias = attn_bias.to(x.dtype)

        if not self.record_weights and self._use_bmm(x, packed[-1].shape[1]):
            self.last_kernel = "bmm"
            qt, kt, vt = _split_heads(packed, feature_major=True)
            out = bmm_attention(qt, kt, vt, attn_bias, self.num_heads)
            out = out.view(n, self.num_heads, self.head_dim, length).permute(0, 3, 1, 2)
        else:
            q, k, v = _split_heads(packed, feature_major=False)
            if self.record_weights or torch.onnx.is_in_onnx_export():
                self.last_kernel = "explicit"
                out, weights = explicit_attention(q, k, v, attn_bias, fold_padding=not self.record_weights)
                if self.record_weights:
                    self.last_weights = weights
            else:
                self.last_kernel = "sdpa"
                # no dropout on the attention matrix: it forces SDPA's slow math path and drawing the
                # (N, H, L, S) random mask cost a third of a CPU training step; blocks drop their outputs
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)
            out = out.transpose(1, 2)
        return self.out_proj(out.reshape(n, length, dim))

    def _use_bmm(self, x: torch.Tensor, keys: int) -> bool:
        if ATTENTION_KERNEL != "auto":
            return ATTENTION_KERNEL == "bmm"
        return (
            x.device.type == "cpu"
            and torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu")
            and not torch.onnx.is_in_onnx_export()
            and self.head_dim <= BMM_MAX_HEAD_DIM
            and x.shape[0] * self.num_heads * x.shape[1] * keys <= BMM_MAX_SCORES
        )


@contextmanager
def attention_kernel(name: str):
    """Force one kernel ("auto", "sdpa" or "bmm") within the block: benchmarks and tests."""
    global ATTENTION_KERNEL
    if name not in KERNELS:
        raise ValueError(f"unknown attention kernel {name!r}; choose one of {KERNELS}")
    previous, ATTENTION_KERNEL = ATTENTION_KERNEL, name
    try:
        yield
    finally:
        ATTENTION_KERNEL = previous


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
