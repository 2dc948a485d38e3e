"""Load what weaver loads (data config, network config, custom functions, trained weights) outside
the ``weaver`` command, for the tools, the benchmark and the tests."""

import importlib.util
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CUSTOM_FUNCTIONS = REPO_ROOT / "data" / "jet_functions.py"
DEFAULT_NETWORK = REPO_ROOT / "networks" / "multiscale_cross.py"


def import_file(path, name):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def register_custom_functions(path=DEFAULT_CUSTOM_FUNCTIONS):
    """What ``weaver --custom-functions PATH`` does: make its functions usable in YAML expressions."""
    from weaver.utils.data.eval_utils import _register_funcs

    _register_funcs(import_file(path, "_func_module"))


def load_data_config(yaml_path, custom_functions=DEFAULT_CUSTOM_FUNCTIONS, **kwargs):
    from weaver.utils.dataset import DataConfig

    if custom_functions:
        register_custom_functions(custom_functions)
    return DataConfig.load(str(yaml_path), **kwargs)


def build_model(data_config, network_config=DEFAULT_NETWORK, **options):
    """(model, model_info) exactly as weaver's ``model_setup`` gets them from ``get_model``."""
    network = import_file(network_config, "_network_module")
    return network.get_model(data_config, **options)


def load_trained_model(data_config, model_path, network_config=DEFAULT_NETWORK, **options):
    model, model_info = build_model(data_config, network_config, **options)
    model.load_state_dict(torch.load(model_path, map_location="cpu"))
    return model.eval(), model_info
