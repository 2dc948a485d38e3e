"""The benchmarked model configurations and their synthetic inputs."""

from pathlib import Path
from types import SimpleNamespace

import torch
import yaml

from multiscale.definitions import MODELS, network_options

from multiscale.synthetic import synthetic_inputs
from multiscale.weaver_io import build_model, load_data_config

from . import REPO_ROOT

# The original TensorFlow package's model_1 demo (its input.py): one stream of 50 tokens x 7
# features, 5 heads, 3 layers, token MLP 64 wide, head MLP 128-64, dropout 0.2, batch 50, Adam.
# Tokens are embedded here, at width 40 = 8 per head (the original attends with 5 heads of key_dim
# 7 on the raw 7 features); ffn_ratio 1.6 gives its 64-wide token MLP.
MATCHED_OPTIONS = {"jet_dim": 40, "jet_heads": 5, "jet_layers": 3, "ffn_ratio": 1.6, "mlp_dims": (128, 64),
                   "dropout": 0.2}
MATCHED_SHAPES = {"pf_features": (-1, 7, 50), "pf_mask": (-1, 1, 50)}
MATCHED_BATCH = 50

# name -> (data config in data/, or None for the matched 50 x 7 stream; network options): the driver's
# models with their default preset (multiscale/definitions.py), then the benchmark's own
CONFIGS = {
    **{name: (Path(model.data_config).name, network_options(name, "full"))
       for name, model in MODELS.items() if not model.mass_hypothesis},
    "cross_paper": (Path(MODELS["cross"].data_config).name, network_options("cross", "paper")),
    "matched": (None, MATCHED_OPTIONS),
}
# measured on request only (not in the default list of python -m benchmarks): cross with the ParT pairwise
# bias over the constituent pairs (``-o pair_bias True``), ~5x slower on CPU; the GPU figures use it
EXTRA_CONFIGS = {
    "cross_pair": ("jets_kin.yaml", {"fusion": "cross", "pair_bias": True}),
}
TRAIN_BATCH = yaml.safe_load((REPO_ROOT / "config" / "mass_scan.yaml").read_text())["batch"]  # the study's batch
INFER_BATCH = 256

_DATA_CONFIGS = {}


def matched_data_config():
    """A stand-in for a weaver DataConfig with one 50 x 7 particle stream and two classes."""
    return SimpleNamespace(input_names=tuple(MATCHED_SHAPES), input_shapes=MATCHED_SHAPES, label_value=["s", "b"])


def build(name, for_inference=False, seed=0, **overrides):
    """(model, model_info) of a named configuration, as weaver's get_model returns them."""
    config_file, options = {**CONFIGS, **EXTRA_CONFIGS}[name]
    return build_from(config_file, {**options, **overrides}, for_inference, seed)


def build_from(config_file, options, for_inference=False, seed=0):
    """(model, model_info) for a data config of data/ (None: the matched 50 x 7 stream) and network options."""
    if config_file is None:
        data_config = matched_data_config()
    else:
        if config_file not in _DATA_CONFIGS:
            _DATA_CONFIGS[config_file] = load_data_config(REPO_ROOT / "data" / config_file)
        data_config = _DATA_CONFIGS[config_file]
    torch.manual_seed(seed)
    return build_model(data_config, for_inference=for_inference, **options)


def inputs_for(model_info, batch_size, num_tokens=None, device="cpu"):
    """Synthetic inputs, the same for a given batch size (seeded with it)."""
    inputs = synthetic_inputs(model_info, batch_size, num_tokens=num_tokens,
                              generator=torch.Generator().manual_seed(batch_size))
    return [x.to(device) for x in inputs]
