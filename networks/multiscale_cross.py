"""weaver network config for the multi-scale cross-attention transformer (arXiv:2401.00452).

    weaver --data-config data/jets_kin.yaml --network-config networks/multiscale_cross.py \
           --custom-functions data/jet_functions.py -o fusion "'cross'" ...

The streams come from the data config's input groups (pf_*, j1_*, j2_*: constituents; ev_*: event
objects), so this one file serves every data/*.yaml. Options (``-o NAME VALUE``): fusion
('cross' | 'concat'), preset ('default' | 'paper'), and any argument of
``multiscale.nn.MultiScaleTransformer`` (jet_dim, jet_heads, jet_layers, obj_dim, obj_heads,
obj_layers, cross_layers, mlp_dims, dropout, pair_bias, ...), and seed (initial weights).
The resolved configuration is logged at build, with a warning for every input left unused.
"""

import torch
from weaver.utils.logger import _logger

from multiscale.nn import MultiScaleTransformer, discover_streams
from multiscale.nn.streams import ignored_inputs
from multiscale.nn.presets import describe, resolve


def get_model(data_config, **kwargs):
    # injected by weaver, not model options
    for_inference = kwargs.pop("for_inference", False)
    kwargs.pop("use_amp", None)
    kwargs.pop("compile_model", None)
    seed = kwargs.pop("seed", None)
    if seed is not None:  # repeated trainings of one model that can be reproduced
        torch.manual_seed(seed)
    preset = kwargs.pop("preset", "default")
    fusion = kwargs.pop("fusion", None)

    streams = discover_streams(data_config.input_names, data_config.input_shapes)
    options = resolve(preset, **kwargs)
    model = MultiScaleTransformer(
        streams,
        data_config.input_names,
        num_classes=len(data_config.label_value),
        fusion=fusion or "cross",
        for_inference=for_inference,
        **options,
    )
    _log_configuration(model, streams, preset, fusion, options, getattr(data_config, "input_dicts", None))

    # one length name per stream so that each token count is dynamic in the ONNX graph
    model_info = {
        "input_names": list(data_config.input_names),
        "input_shapes": {k: ((1,) + data_config.input_shapes[k][1:]) for k in data_config.input_names},
        "output_names": ["softmax"],
        "dynamic_axes": {
            **{k: {0: "N", 2: "n_" + k.rpartition("_")[0]} for k in data_config.input_names},
            "softmax": {0: "N"},
        },
    }
    return model, model_info


def _log_configuration(model, streams, preset, fusion, options, variables):
    """What was built, option by option: a preset or a data config can change the model unseen."""
    shapes = ", ".join(f"{s.name} ({s.num_features} features x {s.num_tokens} tokens"
                       f"{', vectors' if s.has_vectors else ''})" for s in streams)
    _logger.info(f"multiscale_cross: fusion={model.fusion!r} preset={preset!r} streams: {shapes}; "
                 f"options: {describe(options)}")
    if fusion is not None and model.fusion == "single":
        # a one-stream config has nothing to fuse. Warn, not refuse: the model is well defined, and
        # callers may pass one fusion for every data config (tests/test_network.py does)
        _logger.warning(f"fusion={fusion!r} is ignored: the data config has one stream ('{streams[0].name}'), "
                        f"so the model is plain self-attention on it (model_1); fusion needs ev_* and a particle stream")
    for message in model.unused_inputs(variables):
        _logger.warning(message)
    for name in ignored_inputs(model.input_names):
        _logger.info(f"input group '{name}' (ParticleNet's coordinates) is not used by this network: ignored")


class FiniteCrossEntropyLoss(torch.nn.CrossEntropyLoss):
    """Cross-entropy that stops the run at the first non-finite value, instead of training on to a
    NaN checkpoint and NaN predictions with exit status 0."""

    def forward(self, input, target):
        loss = super().forward(input, target)
        if not torch.isfinite(loss).all():
            stage = "training" if torch.is_grad_enabled() else "validation"
            raise FloatingPointError(
                f"non-finite {stage} loss ({loss.detach().float().mean().item()}): check the inputs for inf/NaN "
                f"or extreme values and lower the learning rate (--start-lr)")
        return loss


def get_loss(data_config, **kwargs):
    return FiniteCrossEntropyLoss()
