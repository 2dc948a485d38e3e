"""The multi-scale transformer (Hammad, Moretti, Nojiri, arXiv:2401.00452).

Each stream (jet constituents: local scale; event objects: global scale) is encoded by its own
self-attention stack. Fusion:

- ``cross``: the event-object tokens query the constituent tokens of every particle stream through
  a stack of cross-attention blocks, each block fed the previous block's output (model_3; with
  two particle streams, model_2, the objects attend to both jets' constituents at once);
- ``concat``: the pooled encodings of all streams are concatenated (the paper's baseline);
- one stream only: its pooled self-attention encoding (model_1).

The pooled vector goes through an MLP head that returns logits (softmax only for inference).
"""

import torch
import torch.nn as nn

from .attention import MultiHeadAttention, key_padding_bias
from .blocks import CrossAttentionBlock
from .config import NetworkConfig
from .cpu_kernels import use_cpu_kernels
from .streams import StreamEncoder, StreamSpec, ignored_inputs, masked_mean

CROSS = "cross"  # the key of the cross-attention layers in attention_layers()


def mlp_head(in_dim: int, hidden: tuple[int, ...], num_classes: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.GELU(), nn.Dropout(dropout)]
        in_dim = width
    layers.append(nn.Linear(in_dim, num_classes))
    return nn.Sequential(*layers)


class MultiScaleTransformer(nn.Module):
    def __init__(
        self,
        streams: list[StreamSpec],
        input_names: tuple[str, ...],
        num_classes: int,
        config: NetworkConfig = NetworkConfig(),
        for_inference: bool = False,
    ):
        super().__init__()
        c = self.config = config
        self.input_names = tuple(input_names)
        self.streams = tuple(streams)
        self.for_inference = for_inference
        event_streams = [s for s in streams if s.is_event_stream]
        particle_streams = [s for s in streams if not s.is_event_stream]
        if len(streams) > 1 and c.fusion == "cross" and not (event_streams and particle_streams):
            raise ValueError("fusion 'cross' needs an event-object stream (ev_*) and at least one particle stream")
        self.fusion = c.fusion if len(streams) > 1 else "single"

        encoders = {}
        for spec in particle_streams:
            encoders[spec.name] = StreamEncoder(
                spec, c.jet_dim, c.jet_heads, c.jet_layers, c.ffn_ratio, c.dropout,
                pair_bias=c.pair_bias and spec.has_vectors,
                max_tokens=c.jet_max_tokens, max_features=c.jet_max_features, for_onnx=for_inference,
            )
        for spec in event_streams:
            encoders[spec.name] = StreamEncoder(
                spec, c.obj_dim, c.obj_heads, c.obj_layers, c.ffn_ratio, c.dropout,
                max_features=c.obj_max_features, for_onnx=for_inference,
            )
        self.encoders = nn.ModuleDict(encoders)
        width = {s.name: (c.obj_dim if s.is_event_stream else c.jet_dim) for s in streams}

        self.query_stream = event_streams[0].name if event_streams else None
        self.key_streams = tuple(s.name for s in particle_streams)
        if self.fusion == "cross":
            self.cross_blocks = nn.ModuleList(
                CrossAttentionBlock(c.obj_dim, c.jet_dim, c.cross_heads or c.obj_heads, c.ffn_ratio, c.dropout)
                for _ in range(c.cross_layers)
            )
            self.cross_norm = nn.LayerNorm(c.obj_dim)
            pooled_dim = c.obj_dim
        else:
            pooled_dim = sum(width.values())
        self.head = mlp_head(pooled_dim, c.mlp_dims, num_classes, c.dropout)
        if c.cpu_kernels:
            use_cpu_kernels(self)

    # --- what the interpretability tools read: blocks and attention layers by stream, no internals

    def stream_blocks(self, stream: str) -> nn.ModuleList:
        """The self-attention blocks of ``stream``, in order; each returns the tokens (N, 1 + P, D)."""
        return self.encoders[stream].blocks

    def attention_layers(self) -> dict[str, list[MultiHeadAttention]]:
        """{stream: its self-attention layers, "cross": the cross-attention layers (if any)}, in order.
        Inside ``recording_attention(model)`` each layer keeps its weights in ``last_weights``."""
        layers = {name: [block.attn for block in encoder.blocks] for name, encoder in self.encoders.items()}
        if self.fusion == "cross":
            layers[CROSS] = [block.attn for block in self.cross_blocks]
        return layers

    def unused_inputs(self) -> list[str]:
        """One message per stream whose features or tokens the options leave out (jet_max_features,
        obj_max_features, jet_max_tokens), naming the features where the data config is known."""
        messages = []
        for name, encoder in self.encoders.items():
            spec, option = encoder.spec, ("obj" if encoder.spec.is_event_stream else "jet")
            if encoder.in_features < spec.num_features:
                names = spec.feature_names[encoder.in_features:]
                dropped = ", ".join(names) if names else f"the last {spec.num_features - encoder.in_features}"
                messages.append(f"stream '{name}' uses {encoder.in_features} of its {spec.num_features} features "
                                f"({option}_max_features={encoder.max_features}): ignored {dropped}")
            if encoder.in_tokens < spec.num_tokens:
                messages.append(f"stream '{name}' uses the first {encoder.in_tokens} of its {spec.num_tokens} tokens "
                                f"(jet_max_tokens={encoder.max_tokens})")
        return messages

    def encode(self, *inputs: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Run every stream's encoder: {stream: (tokens (N, 1 + P, D), valid (N, 1 + P))}."""
        named = dict(zip(self.input_names, inputs))
        return {
            name: encoder(named[f"{name}_features"], named.get(f"{name}_vectors"), named[f"{name}_mask"])
            for name, encoder in self.encoders.items()
        }

    def fuse(self, encoded: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Encoded streams -> one pooled vector per event (N, D)."""
        if self.fusion == "cross":
            query, query_valid = encoded[self.query_stream]
            keys = torch.cat([encoded[name][0] for name in self.key_streams], dim=1)
            keys_valid = torch.cat([encoded[name][1] for name in self.key_streams], dim=1)
            attn_bias = key_padding_bias(keys_valid, keys.dtype)
            for block in self.cross_blocks:  # chained: each block refines the previous block's output
                query = block(query, keys, attn_bias)
            return masked_mean(self.cross_norm(query), query_valid)
        return torch.cat([masked_mean(tokens, valid) for tokens, valid in encoded.values()], dim=1)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.fuse(self.encode(*inputs))) + self._zero_from_ignored_inputs(inputs)
        return torch.softmax(logits, dim=1) if self.for_inference else logits

    def _zero_from_ignored_inputs(self, inputs) -> torch.Tensor | float:
        """0, computed from the input groups the network accepts but does not use (pf_points): the ONNX
        exporter drops a graph input nothing reads, and weaver's onnxruntime prediction feeds every input
        group of the data config. One element each, made finite first, so the zero is exact."""
        named = dict(zip(self.input_names, inputs))
        zero = 0.0
        for name in ignored_inputs(self.input_names):
            zero = zero + torch.nan_to_num(named[name].flatten()[:1], 0.0, 0.0, 0.0).sum() * 0.0
        return zero
