"""Which token of a stream goes to which labelled row / column of an attention map.

Tokens are those of ``StreamEncoder``: index 0 is the stream's learned register token, index
i + 1 the i-th input token. A map shows

- the event-object stream: ``reg`` and its object slots (``StreamSpec.token_names``);
- a particle stream: ``reg``, then the leading ``k`` constituents of each fat jet by pT rank
  (constituents are stored pT-ordered per jet). A two-jet stream (``pf``) holds fj1's
  constituents, then fj2's; the feature ``StreamSpec.second_jet_feature`` tells them apart, so
  rank r of fj2 is the r-th constituent of fj2 whatever the number of fj1 constituents.

Per event, ``slots`` (N, T) gives each token its map index, ``REST`` for a valid token beyond
rank ``k`` (its attention is kept apart as the "rest" mass) and ``INVALID`` for padding.
"""

from dataclasses import dataclass

import torch

from multiscale.nn import StreamSpec

REST = -1
INVALID = -2


@dataclass
class Layout:
    labels: list[str]  # one per map slot
    groups: list[tuple[str, int, int]]  # (name, first slot, last slot + 1): blocks separated in plots
    slots: torch.Tensor  # (N, T) long

    @property
    def size(self):
        return len(self.labels)


def event_layout(spec: StreamSpec, valid):
    """Layout of the event-object stream; valid: (N, 1 + P) bool (register included)."""
    n_objects = valid.shape[1] - 1
    names = list(spec.token_names)
    slots = torch.arange(valid.shape[1]).expand_as(valid).clone()
    slots[~valid] = INVALID
    return Layout(["reg"] + names, [("reg", 0, 1), ("objects", 1, 1 + n_objects)], slots)


def constituent_jets(spec: StreamSpec, features, n_tokens):
    """The fat jet of each constituent token: (jet names, (N, n_tokens) long index into them).
    A two-jet stream tells fj2's constituents by its ``second_jet_feature``."""
    if spec.second_jet_feature is not None:
        return list(spec.jets), (features[:, spec.second_jet_feature, :n_tokens] > 0.5).long()
    return list(spec.jets), torch.zeros(features.shape[0], n_tokens, dtype=torch.long)


def particle_layout(spec: StreamSpec, valid, features, k):
    """Layout of a particle stream.

    valid: (N, 1 + P) bool; features: (N, C, P') input features (P' >= P, the model may truncate);
    k: leading constituents shown per jet.
    """
    n_tokens = valid.shape[1] - 1
    constituents_valid = valid[:, 1:]
    jets, jet_id = constituent_jets(spec, features, n_tokens)
    slots = torch.full(valid.shape, INVALID, dtype=torch.long)
    slots[:, 0] = 0
    token_slots = slots[:, 1:]
    labels, groups = ["reg"], [("reg", 0, 1)]
    for j, jet in enumerate(jets):
        in_jet = constituents_valid & (jet_id == j)
        rank = in_jet.long().cumsum(dim=1) - 1
        shown = in_jet & (rank < k)
        token_slots[shown] = 1 + j * k + rank[shown]
        token_slots[in_jet & ~shown] = REST
        labels += [f"{jet} {r + 1}" for r in range(k)]
        groups.append((jet, 1 + j * k, 1 + (j + 1) * k))
    return Layout(labels, groups, slots)


def concat_layouts(layouts: dict[str, Layout]) -> Layout:
    """Key axis of cross-attention: the tokens of several streams side by side, in the given order."""
    if len(layouts) == 1:
        return next(iter(layouts.values()))
    labels, groups, slots, offset = [], [], [], 0
    for stream, layout in layouts.items():
        labels += [f"reg {stream}" if label == "reg" else label for label in layout.labels]
        groups += [(f"reg {stream}" if name == "reg" else name, a + offset, b + offset) for name, a, b in layout.groups]
        slots.append(torch.where(layout.slots >= 0, layout.slots + offset, layout.slots))
        offset += layout.size
    return Layout(labels, groups, torch.cat(slots, dim=1))
