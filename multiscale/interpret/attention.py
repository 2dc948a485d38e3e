"""Attention maps averaged over events, padding-aware.

The weights come from ``multiscale.nn.recording_attention`` (the explicit-softmax path runs only
inside it; normal training and inference keep the fused kernel and store nothing). For each
displayed (query slot, key slot) pair the map keeps the sum of the weights and the number of
events in which both tokens exist, so the mean runs over valid pairs only: padding neither
dilutes it nor adds zeros. Attention to valid keys beyond the displayed ranks is kept per query
as the "rest" mass, so that nothing is silently dropped.
"""

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from multiscale.nn import recording_attention
from multiscale.nn.model import CROSS

from .layout import INVALID, REST, Layout, concat_layouts, event_layout, particle_layout



@torch.no_grad()
def record_attention(model, inputs):
    """One forward pass with every attention layer's weights recorded.

    Returns a dict: ``valid`` {stream: (N, 1 + P) bool}, ``self`` {stream: [(N, H, T, T) per
    block]}, ``cross`` [(N, H, 1 + P_ev, S) per cross block; keys = the particle streams'
    tokens concatenated in ``model.key_streams`` order], ``logits`` (N, classes).
    """
    with recording_attention(model):
        encoded = model.encode(*inputs)
        logits = model.head(model.fuse(encoded))
        weights = {name: [layer.last_weights for layer in layers] for name, layers in model.attention_layers().items()}
    return {
        "valid": {name: valid for name, (_, valid) in encoded.items()},
        "self": {name: w for name, w in weights.items() if name != CROSS},
        "cross": weights.get(CROSS, []),
        "logits": logits,
    }


def _one_hot(slots, size, dtype):
    """(N, T) slots -> (N, T, size); tokens with a negative slot (rest, padding) get a zero row."""
    return F.one_hot(slots.clamp(min=0), size).to(dtype) * (slots >= 0).unsqueeze(-1).to(dtype)


@dataclass
class MapAccumulator:
    """Sums and counts of attention weights on (query slot, key slot) pairs, per head."""

    heads: int
    n_query: int
    n_key: int
    sums: np.ndarray = field(init=False)
    counts: np.ndarray = field(init=False)
    rest_sums: np.ndarray = field(init=False)
    query_counts: np.ndarray = field(init=False)
    events: int = field(init=False, default=0)

    def __post_init__(self):
        self.sums = np.zeros((self.heads, self.n_query, self.n_key))
        self.counts = np.zeros((self.n_query, self.n_key))
        self.rest_sums = np.zeros((self.heads, self.n_query))
        self.query_counts = np.zeros(self.n_query)

    def add(self, weights, query_slots, key_slots, scale=None):
        """weights (N, H, L, S); query_slots (N, L), key_slots (N, S) from a ``Layout``; scale (N,):
        per-event factor on the map (not on the rest mass, which stays a fraction of the attention)."""
        dtype = weights.dtype
        # rows of padded queries and columns of padded keys never enter (nor could a NaN there)
        pair = (query_slots != INVALID)[:, None, :, None] & (key_slots != INVALID)[:, None, None, :]
        weights = weights.masked_fill(~pair, 0.0)
        pq = _one_hot(query_slots, self.n_query, dtype)
        pk = _one_hot(key_slots, self.n_key, dtype)
        rest = (key_slots == REST).to(dtype)
        scaled = weights if scale is None else weights * scale.to(dtype)[:, None, None, None]
        self.sums += torch.einsum("nlq,nhls,nsk->hqk", pq, scaled, pk).double().numpy()
        self.counts += torch.einsum("nlq,nsk->qk", pq, pk).double().numpy()
        self.rest_sums += torch.einsum("nlq,nhls,ns->hq", pq, weights, rest).double().numpy()
        self.query_counts += pq.sum(dim=(0, 1)).double().numpy()
        self.events += weights.shape[0]

    def mean(self):
        """(H, Q, K) mean weight over the events where both tokens exist; NaN where none did."""
        return np.divide(self.sums, self.counts, out=np.full_like(self.sums, np.nan), where=self.counts > 0)

    def rest_mean(self):
        """(H, Q) mean attention a query puts on valid keys beyond the displayed ranks."""
        q = self.query_counts
        return np.divide(self.rest_sums, q, out=np.full_like(self.rest_sums, np.nan), where=q > 0)


@dataclass
class AttentionMap:
    kind: str  # "self" or "cross"
    stream: str  # query stream
    layer: int  # block index (non-negative)
    query_labels: list[str]
    query_groups: list
    key_labels: list[str]
    key_groups: list
    acc: MapAccumulator
    relative: bool = False


def _resolve_layer(layer, n_layers, what):
    if not -n_layers <= layer < n_layers:
        raise ValueError(f"layer {layer} out of range: {what} has {n_layers} blocks")
    return layer % n_layers


def stream_layouts(model, valid, named_inputs, k) -> dict[str, Layout]:
    return {
        spec.name: event_layout(spec, valid[spec.name]) if spec.is_event_stream
        else particle_layout(spec, valid[spec.name], named_inputs[f"{spec.name}_features"], k)
        for spec in model.streams
    }


def _key_count(key_valid, relative):
    """Per-event scale of the map when ``relative``: the number of valid keys, so that 1 = uniform
    attention. Removes the trivial 1/n dependence on the token multiplicity when classes with
    different multiplicities are compared."""
    return key_valid.sum(dim=1) if relative else None


@torch.no_grad()
def attention_maps(model, batches, layer=-1, cross_layer=-1, k=20, relative=False):
    """Average the self-attention maps of block ``layer`` of every stream and the cross-attention
    map of cross block ``cross_layer`` over the events of ``batches`` (an iterable of input lists).

    ``relative``: accumulate weight x number of valid keys (1 = uniform) instead of the weight.
    Returns {"self:<stream>": AttentionMap, "cross": AttentionMap (cross fusion only)}.
    """
    model.eval()
    maps = {}
    for inputs in batches:
        rec = record_attention(model, inputs)
        layouts = stream_layouts(model, rec["valid"], dict(zip(model.input_names, inputs)), k)
        for stream, weights in rec["self"].items():
            index = _resolve_layer(layer, len(weights), f"stream '{stream}'")
            w = weights[index]
            lay = layouts[stream]
            key = f"self:{stream}"
            if key not in maps:
                maps[key] = AttentionMap("self", stream, index, lay.labels, lay.groups, lay.labels, lay.groups,
                                         MapAccumulator(w.shape[1], lay.size, lay.size), relative)
            maps[key].acc.add(w, lay.slots, lay.slots, _key_count(rec["valid"][stream], relative))
        if rec["cross"]:
            index = _resolve_layer(cross_layer, len(rec["cross"]), "the cross-attention stack")
            w = rec["cross"][index]
            q = layouts[model.query_stream]
            keys = concat_layouts({s: layouts[s] for s in model.key_streams})
            if "cross" not in maps:
                maps["cross"] = AttentionMap("cross", model.query_stream, index, q.labels, q.groups, keys.labels,
                                             keys.groups, MapAccumulator(w.shape[1], q.size, keys.size), relative)
            keys_valid = torch.cat([rec["valid"][s] for s in model.key_streams], dim=1)
            maps["cross"].acc.add(w, q.slots, keys.slots, _key_count(keys_valid, relative))
    return maps


def maps_to_arrays(maps_by_class):
    """{class: {name: AttentionMap}} -> flat dict of arrays for ``np.savez``."""
    out = {}
    for cls, maps in maps_by_class.items():
        for name, m in maps.items():
            tag = name.replace(":", "_")
            out[f"{tag}_query_labels"] = np.array(m.query_labels)
            out[f"{tag}_key_labels"] = np.array(m.key_labels)
            out[f"{tag}_layer"] = np.array(m.layer)
            out[f"{tag}_relative"] = np.array(m.relative)
            out[f"{cls}_{tag}_mean"] = m.acc.mean()  # (H, Q, K), NaN where the pair never occurred
            out[f"{cls}_{tag}_sums"] = m.acc.sums
            out[f"{cls}_{tag}_counts"] = m.acc.counts  # (Q, K) events with both tokens valid
            out[f"{cls}_{tag}_rest"] = m.acc.rest_mean()  # (H, Q) mass on valid keys beyond rank k
            out[f"{cls}_{tag}_events"] = np.array(m.acc.events)
    return out
