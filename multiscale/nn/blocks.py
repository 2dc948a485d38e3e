"""Pre-norm residual transformer blocks: self-attention within a stream, cross-attention between streams."""

import torch
import torch.nn as nn

from .attention import MultiHeadAttention


def feed_forward(dim: int, ratio: float, dropout: float) -> nn.Sequential:
    hidden = max(1, int(dim * ratio))
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))


class SelfAttentionBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, ffn_ratio: float = 4.0, dropout: float = 0.1):
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = feed_forward(dim, ffn_ratio, dropout)
        self.drop = nn.Dropout(dropout)

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
        self.drop = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, context: torch.Tensor, attn_bias: torch.Tensor) -> torch.Tensor:
        x = query + self.drop(self.attn(self.norm_query(query), attn_bias, self.norm_context(context)))
        return x + self.drop(self.ffn(self.norm_ffn(x)))
