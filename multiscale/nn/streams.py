"""Input streams: which token sets a data config declares, and the encoder of one stream.

A stream is a group of weaver inputs sharing a prefix: ``<prefix>_features`` (N, C, P),
``<prefix>_mask`` (N, 1, P) and optionally ``<prefix>_vectors`` (N, 4, P) as (px, py, pz, E).
``ev`` is the event-object stream (the global scale); every other prefix (``pf``, ``j1``, ``j2``)
is a particle stream (the local scale). What each token of a stream is (which fat jet, which
object slot) is declared here too, in ``StreamSpec``, and read by the interpretability tools from
``model.streams``: a new stream needs no change there.
"""

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from weaver.nn.model.ParticleTransformer import Embed, PairEmbed

from multiscale.schema import OBJECT_SLOTS

from .attention import key_padding_bias
from .blocks import SelfAttentionBlock

# stream roles: the event-object stream, whose tokens are the schema's object slots...
EVENT_STREAM = "ev"
# ...particle streams holding one fat jet's constituents...
ONE_JET_STREAMS = {"j1": "fj1", "j2": "fj2"}
# ...and any other particle stream: both jets, fj2's constituents marked by <stream>_isfj2 = 1
SECOND_JET_FEATURE = "isfj2"
_KINDS = ("features", "vectors", "mask")
# ParticleNet's coordinates in ParT-style data configs (pf_points): this network takes the angles
# from the features and the pair bias from the vectors, so the group is accepted and left unused
IGNORED_KINDS = ("points",)


def ignored_inputs(input_names) -> list[str]:
    """The input groups of a data config that the network accepts and does not use."""
    return [name for name in input_names if name.rpartition("_")[2] in IGNORED_KINDS]


@dataclass(frozen=True)
class StreamSpec:
    name: str
    num_features: int
    num_tokens: int
    has_vectors: bool
    feature_names: tuple[str, ...] = ()  # the data config's variables of <name>_features, when known

    @property
    def is_event_stream(self) -> bool:
        return self.name == EVENT_STREAM

    @property
    def second_jet_feature(self) -> int | None:
        """Index of the feature that is 1 on the second fat jet's constituents (two-jet particle streams)."""
        marker = f"{self.name}_{SECOND_JET_FEATURE}"
        if self.is_event_stream or marker not in self.feature_names:
            return None
        return self.feature_names.index(marker)

    @property
    def jets(self) -> tuple[str, ...]:
        """The fat jets whose constituents a particle stream's tokens are (a stream of another kind of
        data: one 'jet' named after the stream)."""
        if self.is_event_stream:
            return ()
        if self.second_jet_feature is not None:
            return ("fj1", "fj2")
        return (ONE_JET_STREAMS.get(self.name, self.name),)

    @property
    def token_names(self) -> tuple[str, ...]:
        """Names of the event-object tokens: the schema's slots, or obj1..objN for another object list."""
        if len(OBJECT_SLOTS) == self.num_tokens:
            return OBJECT_SLOTS
        return tuple(f"obj{i + 1}" for i in range(self.num_tokens))


def discover_streams(input_names, input_shapes, input_dicts=None) -> list[StreamSpec]:
    """Group weaver inputs ``<prefix>_{features,vectors,mask}`` into streams, in config order;
    ``input_dicts`` (the data config's variable names per group) names their features, which gives
    the streams their roles."""
    groups: dict[str, dict[str, tuple]] = {}
    for name in input_names:
        prefix, _, kind = name.rpartition("_")
        if kind in IGNORED_KINDS:
            continue
        if kind not in _KINDS or not prefix:
            raise ValueError(
                f"input group '{name}' in the data config is not named <stream>_features, <stream>_vectors "
                f"or <stream>_mask (e.g. pf_features, ev_mask; <stream>_points is accepted and not used)"
            )
        groups.setdefault(prefix, {})[kind] = tuple(input_shapes[name])
    streams = []
    for prefix, parts in groups.items():
        for required in ("features", "mask"):
            if required not in parts:
                raise ValueError(f"stream '{prefix}' has no input group '{prefix}_{required}' in the data config")
        if "vectors" in parts and parts["vectors"][1] != 4:
            raise ValueError(f"'{prefix}_vectors' must hold 4 variables (px, py, pz, energy), got {parts['vectors'][1]}")
        lengths = {shape[2] for shape in parts.values()}
        if len(lengths) != 1:
            raise ValueError(f"input groups of stream '{prefix}' have different lengths {sorted(lengths)}")
        features = tuple((input_dicts or {}).get(f"{prefix}_features", ()))
        streams.append(StreamSpec(prefix, parts["features"][1], parts["features"][2], "vectors" in parts, features))
    return streams


def masked_mean(tokens: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over valid tokens: (N, T, D), (N, T) -> (N, D). Never empty (register token)."""
    weights = valid.to(tokens.dtype).unsqueeze(-1)
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


# A harmless stand-in for padded four-vectors: all-zero vectors give NaN in exported ONNX graphs
# (atan2(0, 0) in the pairwise features), even though those pairs are masked out afterwards.
_SAFE_VECTOR = (1.0, 0.0, 0.0, 1.0)


class StreamEncoder(nn.Module):
    """Embeds one token set and runs its self-attention stack.

    A learned register token is prepended and is always valid: attention never sees an empty
    key set and pooling never divides by zero, even for a jet with no constituent at all.
    """

    def __init__(
        self,
        spec: StreamSpec,
        dim: int,
        num_heads: int,
        num_layers: int,
        ffn_ratio: float = 4.0,
        dropout: float = 0.1,
        pair_bias: bool = False,
        max_tokens: int | None = None,
        max_features: int | None = None,
        for_onnx: bool = False,
    ):
        super().__init__()
        self.spec = spec
        self.max_tokens = max_tokens
        self.max_features = max_features
        in_features = self.in_features = min(spec.num_features, max_features or spec.num_features)
        self.in_tokens = min(spec.num_tokens, max_tokens or spec.num_tokens)
        self.embed = Embed(in_features, [dim, dim])
        self.register_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.register_token, std=0.02)
        self.pair_embed = None
        if pair_bias:
            if not spec.has_vectors:
                raise ValueError(f"pair_bias needs '{spec.name}_vectors' (px, py, pz, energy) in the data config")
            self.pair_embed = PairEmbed(4, 0, [64, 64, 64, num_heads], for_onnx=for_onnx)
        self.blocks = nn.ModuleList(SelfAttentionBlock(dim, num_heads, ffn_ratio, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, features, vectors, mask):
        """features (N, C, P), vectors (N, 4, P) or None, mask (N, 1, P) ->
        tokens (N, 1 + P, D) with the register token first, and their validity (N, 1 + P) bool."""
        if self.max_tokens:
            features, mask = features[:, :, : self.max_tokens], mask[:, :, : self.max_tokens]
            vectors = None if vectors is None else vectors[:, :, : self.max_tokens]
        if self.max_features:
            features = features[:, : self.max_features]
        valid = mask[:, 0] > 0
        if vectors is not None:
            # a token without energy carries nothing, nor one with an inf or NaN four-vector (it would
            # make every pairwise feature NaN): treat both as padding, with or without pair_bias
            valid = valid & (vectors[:, 3] > 0) & torch.isfinite(vectors).all(dim=1)
        # padded values never leak in, and inf / NaN features become 0 (weaver's own NaN value):
        # one bad value must not turn the loss into NaN. Finite inputs are unchanged
        keep = valid.unsqueeze(1) & torch.isfinite(features)
        features = torch.where(keep, features, torch.zeros((), dtype=features.dtype, device=features.device))

        tokens = self.embed(features)
        register = self.register_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([register.to(tokens.dtype), tokens], dim=1)
        valid = F.pad(valid, (1, 0), value=True)

        attn_bias = key_padding_bias(valid, tokens.dtype)
        if self.pair_embed is not None and self._has_pairs(valid[:, 1:]):
            safe = torch.tensor(_SAFE_VECTOR, dtype=vectors.dtype, device=vectors.device).view(1, 4, 1)
            vectors = torch.where(valid[:, None, 1:], vectors, safe)
            pair_bias = self.pair_embed(vectors, mask=valid[:, None, 1:].to(vectors.dtype))  # (N, H, P, P)
            attn_bias = attn_bias + F.pad(pair_bias, (1, 0, 1, 0)).to(attn_bias.dtype)

        for block in self.blocks:
            tokens = block(tokens, attn_bias)
        return self.norm(tokens), valid

    def _has_pairs(self, valid: torch.Tensor) -> bool:
        """False for a batch without any valid token, where weaver's sparse PairEmbed would run a
        Conv1d over zero pairs and fail; the pair bias of padding is zero anyway. Always True when
        exporting (the dense ONNX path handles it, and the graph must not depend on the data)."""
        if self.pair_embed.for_onnx or torch.jit.is_tracing() or torch.compiler.is_compiling():
            return True
        return bool(valid.any())
