"""Named hyper-parameter sets for ``--network-option preset``; explicit options override them."""

PRESETS = {
    # what the demo and docs/results.md use. The ParT pairwise bias (pair_bias=True) is available
    # but off: its pair embedding over 128 x 128 constituent pairs made CPU training ~5x slower
    "default": dict(
        jet_dim=64, jet_heads=8, jet_layers=3,
        obj_dim=64, obj_heads=8, obj_layers=2,
        cross_layers=2, mlp_dims=(128, 64), ffn_ratio=4.0, dropout=0.1, pair_bias=False,
    ),
    # the talk's configuration: jets x 3 features, objects 9 x 5, 5 heads and
    # 2 layers per stream, MLP 128-64. Differences forced by correctness: tokens are embedded
    # (width 40 = 8 per head) instead of attending at the raw feature width, and padding is masked.
    "paper": dict(
        jet_dim=40, jet_heads=5, jet_layers=2,
        obj_dim=40, obj_heads=5, obj_layers=2,
        cross_layers=2, mlp_dims=(128, 64), ffn_ratio=1.0, dropout=0.1, pair_bias=False,
        jet_max_features=3, obj_max_features=5,
    ),
}


# options whose None has a meaning: no limit (the max_* options) or obj_heads (cross_heads)
NULLABLE = ("jet_max_tokens", "jet_max_features", "obj_max_features", "cross_heads")
LIMITS = ("jet_max_tokens", "jet_max_features", "obj_max_features")


def resolve(preset: str, **overrides) -> dict:
    """The preset's options with the explicit ones on top. An explicit None is kept: weaver passes
    only the options given on the command line, so ``-o jet_max_features None`` means no limit."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    options = {**PRESETS[preset], **overrides}
    for name, value in options.items():
        if value is None and name not in NULLABLE:
            raise ValueError(f"network option {name}=None: give a value (None is allowed only for {', '.join(NULLABLE)})")
        if name in LIMITS and value is not None and not (type(value) is int and value > 0):
            # 0 would silently mean "all" downstream
            raise ValueError(f"network option {name}={value!r}: give a positive integer, or None for no limit")
    return options


def describe(options: dict) -> str:
    """One line listing every resolved option, for the training log."""
    return ", ".join(f"{name}={value!r}" for name, value in sorted(options.items()))
