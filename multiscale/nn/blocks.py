"""Pre-norm residual transformer blocks: self-attention within a stream, cross-attention between streams."""

import torch
import torch.nn as nn

from .attention import MultiHeadAttention


def _fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    # 16 random bits per element, four per 64-bit draw of the CPU generator (full range, so every
    # 16-bit lane is uniform): p is honoured to 1/65536
    n = x.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2**63), None)
    keep = bits.view(torch.int16)[:n].view(x.shape) >= round(p * 65536) - 32768
    return x * keep.to(x.dtype).mul_(1.0 / (1.0 - p))


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
        h = self.norm_attn(x)
        x = x + self.drop(self.attn(h, h, attn_bias))
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
        x = query + self.drop(self.attn(self.norm_query(query), self.norm_context(context), attn_bias))
        return x + self.drop(self.ffn(self.norm_ffn(x)))
