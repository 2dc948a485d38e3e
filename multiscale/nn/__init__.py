"""Building blocks and the multi-scale model (see ``model.MultiScaleTransformer``)."""

from .allocator import tune_malloc
from .attention import MultiHeadAttention, recording_attention
from .blocks import CrossAttentionBlock, SelfAttentionBlock
from .model import MultiScaleTransformer
from .presets import PRESETS
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
    "PRESETS",
    "tune_malloc",
]

tune_malloc()  # see allocator.py: CPU training steps page-faulted their buffers in again and again
