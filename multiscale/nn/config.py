"""The network's hyper-parameters: one typed configuration and its defaults.

weaver passes ``-o NAME VALUE`` options to ``get_model``; ``resolve`` turns a preset (a named set of
options, ``multiscale.definitions.PRESETS``) plus those options into a ``NetworkConfig``, checked, and
``describe`` gives the line the training log shows.
"""

from dataclasses import asdict, dataclass, fields

from ..definitions import DEFAULT_PRESET, PRESET_ALIASES, PRESETS

FUSIONS = ("cross", "concat")


@dataclass(frozen=True)
class NetworkConfig:
    # how the streams meet: the event objects attend to the constituents, or pooled encodings concatenated
    fusion: str = "cross"
    # particle streams (the local scale): width, heads, self-attention blocks
    jet_dim: int = 64
    jet_heads: int = 8
    jet_layers: int = 3
    # the event-object stream (the global scale)
    obj_dim: int = 64
    obj_heads: int = 8
    obj_layers: int = 2
    # the cross-attention stack (fusion 'cross'); cross_heads None: obj_heads
    cross_layers: int = 2
    cross_heads: int | None = None
    mlp_dims: tuple[int, ...] = (128, 64)
    ffn_ratio: float = 4.0
    dropout: float = 0.1
    # ParT's pairwise bias from the constituents' four-vectors: its pair embedding over 128 x 128
    # constituent pairs made CPU training ~5x slower, so it is off unless asked for
    pair_bias: bool = False
    # use only the first tokens / features of a stream (None: all)
    jet_max_tokens: int | None = None
    jet_max_features: int | None = None
    obj_max_features: int | None = None
    # the CPU training kernel of attention (nn/cpu_kernels.py): same results, no effect on GPU or export
    cpu_kernels: bool = True

    def __post_init__(self):
        if self.fusion not in FUSIONS:
            raise ValueError(f"network option fusion={self.fusion!r}: choose one of {FUSIONS}")
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and "None" not in str(f.type):
                raise ValueError(f"network option {f.name}=None: give a value (None is allowed only for "
                                 f"{', '.join(NULLABLE)})")
            if f.name in LIMITS and value is not None and not (type(value) is int and value > 0):
                # 0 would silently mean "all" downstream
                raise ValueError(f"network option {f.name}={value!r}: give a positive integer, or None for no limit")
        object.__setattr__(self, "mlp_dims", tuple(self.mlp_dims))


NULLABLE = tuple(f.name for f in fields(NetworkConfig) if "None" in str(f.type))
LIMITS = ("jet_max_tokens", "jet_max_features", "obj_max_features")


def resolve(preset: str = DEFAULT_PRESET, **options) -> NetworkConfig:
    """The preset's configuration with the explicit options on top. An explicit None is kept: weaver
    passes only the options given on the command line, so ``-o jet_max_features None`` means no limit."""
    preset = PRESET_ALIASES.get(preset, preset)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    known = {f.name for f in fields(NetworkConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown network option(s) {', '.join(unknown)}; known: preset, seed, {', '.join(sorted(known))}")
    return NetworkConfig(**{**PRESETS[preset], **options})


def describe(config: NetworkConfig) -> str:
    """One line listing every option, for the training log."""
    return ", ".join(f"{name}={value!r}" for name, value in asdict(config).items())
