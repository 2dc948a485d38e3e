"""Load what weaver loads (data config, network, custom functions, trained weights) outside the
``weaver`` command, for the tools and the tests."""

import importlib
import importlib.util
from pathlib import Path

import torch


def import_file(path, name):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def register_custom_functions(path=None):
    """What ``weaver --custom-functions PATH`` does: make its functions usable in YAML expressions.
    None: the package's own (``multiscale.jet_functions``, which ``data/jet_functions.py`` re-exports)."""
    from weaver.utils.data.eval_utils import _register_funcs

    module = importlib.import_module("multiscale.jet_functions") if path is None else import_file(path, "_func_module")
    _register_funcs(module)


def load_data_config(yaml_path, custom_functions=None, **kwargs):
    """weaver's DataConfig of ``yaml_path``, after registering the custom functions (None: the
    package's; "": none, for a data config that calls no function)."""
    from weaver.utils.dataset import DataConfig

    if custom_functions != "":
        register_custom_functions(custom_functions)
    return DataConfig.load(str(yaml_path), **kwargs)


def build_model(data_config, network_config=None, **options):
    """(model, model_info) exactly as weaver's ``model_setup`` gets them from ``get_model``; from the
    package's network (``multiscale.network``), or from a weaver network config file."""
    if network_config is None:
        from multiscale.network import get_model
    else:
        get_model = import_file(network_config, "_network_module").get_model
    return get_model(data_config, **options)


class CheckpointError(ValueError):
    """A model file that cannot be loaded into the model the options build; the message is one line."""


def read_checkpoint(model_path) -> dict:
    """The state dict in ``model_path`` (weaver's ``*_state.pt``), or a one-line CheckpointError."""
    path = Path(model_path)
    if not path.is_file():
        raise CheckpointError(f"no such model file: {path}")
    try:
        state = torch.load(path, map_location="cpu")
    except Exception as err:  # torch.load raises pickle, zip, runtime or unicode errors, by the file's content
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (torch.load: {first_line})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds no state dict of model weights (weaver's *_state.pt)")
    return state


def load_trained_model(data_config, model_path, network_config=None, **options):
    state = read_checkpoint(model_path)
    model, model_info = build_model(data_config, network_config, **options)
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise CheckpointError(f"{model_path} was trained with other options: {option_hint(state, model.state_dict())}") from None
    return model.eval(), model_info


def option_hint(saved: dict, built: dict) -> str:
    """Which network options probably differ between a checkpoint and the model built, in words."""
    hints = []

    def differ(part):  # does the key set differ for the keys holding ``part``?
        return {k for k in saved if part in k} != {k for k in built if part in k}

    streams = [{k.split(".")[1] for k in d if k.startswith("encoders.")} for d in (saved, built)]
    if streams[0] != streams[1]:
        hints.append(f"streams {sorted(streams[0])} in the checkpoint, {sorted(streams[1])} here: another data config")
    if differ(".pair_embed."):
        has = any(".pair_embed." in k for k in saved)
        hints.append(f"the checkpoint {'has' if has else 'has no'} pair-bias weights: -o pair_bias {has}")
    if any("cross_blocks." in k for k in saved) != any("cross_blocks." in k for k in built):
        hints.append("fusion differs ('cross' has cross_blocks, 'concat' and one-stream models none)")
    elif differ("cross_blocks."):
        hints.append("cross_layers differs")
    if any(differ(f"encoders.{name}.blocks.") for name in streams[0] & streams[1]):
        hints.append("jet_layers / obj_layers differ")
    if differ("head."):
        hints.append("mlp_dims differs")
    shapes = [k for k in saved.keys() & built.keys() if saved[k].shape != built[k].shape]
    if shapes:
        name = next((k for k in shapes if k.endswith("embed.input_bn.weight")), sorted(shapes)[0])
        what = ("input feature count: -o preset, jet_max_features / obj_max_features or the data config"
                if name.endswith("embed.input_bn.weight") else
                "widths: -o preset, jet_dim / obj_dim / mlp_dims / ffn_ratio / heads, or the number of classes")
        hints.append(f"{what} ({name} is {tuple(saved[name].shape)} in the checkpoint, {tuple(built[name].shape)} here)")
    return "; ".join(hints) or "the weights do not match this model"
