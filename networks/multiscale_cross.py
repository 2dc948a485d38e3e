"""weaver network config for the multi-scale cross-attention transformer (arXiv:2401.00452).

    weaver --data-config data/jets_kin.yaml --network-config networks/multiscale_cross.py \
           --custom-functions data/jet_functions.py -o fusion "'cross'" ...

The streams come from the data config's input groups (pf_*, j1_*, j2_*: constituents; ev_*: event
objects), so this one file serves every data/*.yaml. Options (``-o NAME VALUE``): fusion
('cross' | 'concat'), preset ('default' | 'paper'), and any argument of
``multiscale.nn.MultiScaleTransformer`` (jet_dim, jet_heads, jet_layers, obj_dim, obj_heads,
obj_layers, cross_layers, mlp_dims, dropout, pair_bias, ...), and seed (initial weights).
"""

import torch

from multiscale.nn import MultiScaleTransformer, discover_streams
from multiscale.nn.presets import resolve


def get_model(data_config, **kwargs):
    # injected by weaver, not model options
    for_inference = kwargs.pop("for_inference", False)
    kwargs.pop("use_amp", None)
    kwargs.pop("compile_model", None)
    seed = kwargs.pop("seed", None)
    if seed is not None:  # repeated trainings of one model that can be reproduced
        torch.manual_seed(seed)
    preset = kwargs.pop("preset", "default")
    fusion = kwargs.pop("fusion", "cross")

    streams = discover_streams(data_config.input_names, data_config.input_shapes)
    options = resolve(preset, **kwargs)
    model = MultiScaleTransformer(
        streams,
        data_config.input_names,
        num_classes=len(data_config.label_value),
        fusion=fusion,
        for_inference=for_inference,
        **options,
    )

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


def get_loss(data_config, **kwargs):
    return torch.nn.CrossEntropyLoss()
