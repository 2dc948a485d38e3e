"""Pre-norm residual transformer blocks: self-attention within a stream, cross-attention between streams."""

import torch
import torch.nn as nn

from .attention import MultiHeadAttention


def _fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    # one random byte per element, eight per 64-bit draw of the CPU generator; the rate is p rounded
    # to a multiple of 1/256 and the scale is that of the rounded rate, so the expectation is kept
    n = x.numel()
    threshold = round(p * 256)
    bits = torch.empty((n + 7) // 8, dtype=torch.int64, device=x.device).random_(-(2**63), None)
    keep = bits.view(torch.uint8)[:n].view(x.shape) >= threshold
    return x * keep.to(x.dtype).mul_(256 / (256 - threshold))


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper random mask on CPU.

    PyTorch's CPU dropout draws one double-precision Bernoulli number per element, serially (its
    MKL path is taken on Intel CPUs only): it was a third of the forward pass of a CPU training
    step. Here a 64-bit draw gives the bits of four elements. Same scaling (1 / (1 - p)), same
    identity in eval mode; on other devices the native kernel runs.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu" or self.p >= 1.0:
            return super().forward(x)
        return _fast_dropout(x, self.p)


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
