"""Building blocks and the multi-scale model (see ``model.MultiScaleTransformer``)."""

from .attention import MultiHeadAttention, recording_attention
from .blocks import CrossAttentionBlock, SelfAttentionBlock
from .config import PRESETS, NetworkConfig, resolve
from .model import MultiScaleTransformer
from .streams import StreamEncoder, StreamSpec, discover_streams

__all__ = [
    "MultiHeadAttention",
    "recording_attention",
    "SelfAttentionBlock",
    "CrossAttentionBlock",
    "StreamEncoder",
    "StreamSpec",
    "discover_streams",
    "MultiScaleTransformer",
    "NetworkConfig",
    "PRESETS",
    "resolve",
]
