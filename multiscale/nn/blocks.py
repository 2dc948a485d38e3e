"""Pre-norm residual transformer blocks: self-attention within a stream, cross-attention between streams."""

import torch
import torch.nn as nn

from .attention import MultiHeadAttention


def _fast_dropout(x: torch.Tensor, threshold: int) -> torch.Tensor:
    # one random byte per element, eight per 64-bit draw of the CPU generator; an element is dropped
    # when its byte is below ``threshold`` (probability threshold / 256)
    n = x.numel()
    bits = torch.empty((n + 7) // 8, dtype=torch.int64, device=x.device).random_(-(2**63), None)
    keep = bits.view(torch.uint8)[:n].view(x.shape) >= threshold
    return x * keep.to(x.dtype).mul_(256 / (256 - threshold))


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper random mask on CPU.

    PyTorch's CPU dropout draws one double-precision Bernoulli number per element, serially (its
    MKL path is taken on Intel CPUs only): it was a third of the forward pass of a CPU training
    step. Here one 64-bit draw gives the random bytes of eight elements, so the rate is p rounded
    to a multiple of 1/256 (0.2 becomes 0.1992, 0.1 becomes 0.1016) and the kept elements are scaled by
    1 / (1 - rounded p), which keeps the expectation. Identity in eval mode; the native kernel on
    other devices and for rates that round to 0 or 1.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        threshold = round(self.p * 256)
        if not self.training or x.device.type != "cpu" or not 0 < threshold < 256:
            return super().forward(x)
        return _fast_dropout(x, threshold)


def feed_forward(dim: int, ratio: float, dropout: float) -> nn.Sequential:
    hidden = max(1, int(dim * ratio))
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), Dropout(dropout), nn.Linear(hidden, dim))


class SelfAttentionBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, ffn_ratio: float = 4.0, dropout: float = 0.1):
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = feed_forward(dim, ffn_ratio, dropout)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm_attn(x), attn_bias))
        return x + self.drop(self.ffn(self.norm_ffn(x)))


class CrossAttentionBlock(nn.Module):
    """Query tokens (one scale) attend to key tokens (another scale); keys are not updated."""

    def __init__(self, dim: int, kv_dim: int, num_heads: int, ffn_ratio: float = 4.0, dropout: float = 0.1):
        super().__init__()
        self.norm_query = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(kv_dim)
        self.attn = MultiHeadAttention(dim, num_heads, kv_dim=kv_dim)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = feed_forward(dim, ffn_ratio, dropout)
        self.drop = Dropout(dropout)

    def forward(self, query: torch.Tensor, context: torch.Tensor, attn_bias: torch.Tensor) -> torch.Tensor:
        x = query + self.drop(self.attn(self.norm_query(query), attn_bias, self.norm_context(context)))
        return x + self.drop(self.ffn(self.norm_ffn(x)))
