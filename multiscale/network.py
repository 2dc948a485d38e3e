"""The network weaver trains: ``get_model`` and ``get_loss``, as ``networks/multiscale_cross.py``
hands them to ``weaver --network-config``.

Options (``-o NAME VALUE``): ``preset`` (a name of ``multiscale.definitions.PRESETS``, listed by
``python -m multiscale.definitions presets``, the default first), ``seed`` (initial weights),
``batched_loader`` (the training loop's batches, below), and every field of
``multiscale.nn.NetworkConfig`` (fusion, jet_dim, ..., cpu_kernels). The streams come from the data
config's input groups, so one network serves every data/*.yaml. The resolved configuration is
logged at build, with a warning for every input left unused.

``get_train_fn`` / ``get_evaluate_fn`` give weaver its own training and evaluation functions,
unchanged, fed by ``multiscale.weaver_batches`` (whole batches gathered at once instead of event
by event, where the loader runs in the training process) unless ``-o batched_loader False``.
"""

import numpy as np
import torch
from weaver.utils.logger import _logger

from multiscale.definitions import DEFAULT_PRESET
from multiscale.nn import MultiScaleTransformer, discover_streams, resolve
from multiscale.nn.config import describe
from multiscale.nn.streams import ignored_inputs

# passed by weaver itself, not network options
WEAVER_ARGUMENTS = ("use_amp", "compile_model")
# options of the training loop, not of the model
LOOP_OPTIONS = ("batched_loader",)


def get_model(data_config, **options):
    """(model, model_info) for weaver: the model and the ONNX export's input/output description."""
    for_inference = options.pop("for_inference", False)
    for name in WEAVER_ARGUMENTS + LOOP_OPTIONS:
        options.pop(name, None)
    seed = options.pop("seed", None)
    if seed is not None:  # repeated trainings of one model that can be reproduced
        torch.manual_seed(seed)
        # weaver shuffles the events with numpy's global generator, which it never seeds (its loaders are
        # iterated after the model is built, so this fixes the event order too)
        np.random.seed(seed)
    preset = options.pop("preset", DEFAULT_PRESET)
    fusion_given = "fusion" in options

    config = resolve(preset, **options)
    streams = discover_streams(data_config.input_names, data_config.input_shapes, getattr(data_config, "input_dicts", None))
    model = MultiScaleTransformer(streams, data_config.input_names, len(data_config.label_value), config, for_inference)
    _log_configuration(model, preset, seed, fusion_given)
    return model, onnx_model_info(data_config)


def onnx_model_info(data_config) -> dict:
    """Input and output names and shapes for weaver's ``--export-onnx``; one length name per
    stream, so that each token count is dynamic in the ONNX graph."""
    names = list(data_config.input_names)
    return {
        "input_names": names,
        "input_shapes": {k: ((1,) + data_config.input_shapes[k][1:]) for k in names},
        "output_names": ["softmax"],
        "dynamic_axes": {**{k: {0: "N", 2: "n_" + k.rpartition("_")[0]} for k in names}, "softmax": {0: "N"}},
    }


def _log_configuration(model, preset, seed, fusion_given):
    """What was built, option by option: a preset or a data config can change the model unseen."""
    shapes = ", ".join(f"{s.name} ({s.num_features} features x {s.num_tokens} tokens"
                       f"{', vectors' if s.has_vectors else ''})" for s in model.streams)
    _logger.info(f"multiscale_cross: {model.fusion} model, preset={preset!r}, seed={seed!r}, streams: {shapes}; "
                 f"options: {describe(model.config)}")
    if fusion_given and model.fusion == "single":
        # a one-stream config has nothing to fuse. Warn, not refuse: the model is well defined, and
        # callers may pass one fusion for every data config (tests/test_network.py does)
        _logger.warning(f"fusion={model.config.fusion!r} is ignored: the data config has one stream "
                        f"('{model.streams[0].name}'), so the model is plain self-attention on it (model_1); "
                        f"fusion needs ev_* and a particle stream")
    for message in model.unused_inputs():
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


def get_loss(data_config, **options):
    return FiniteCrossEntropyLoss()


def _weaver_loop(kind, extra_args):
    """weaver's own ``train_*`` / ``evaluate_*`` function, classification or regression as its
    --regression-mode says."""
    from weaver.utils.nn import tools

    regression = getattr((extra_args or {}).get("args"), "regression_mode", False)
    return getattr(tools, f"{kind}_{'regression' if regression else 'classification'}")


def get_train_fn(data_config, batched_loader=True, **options):
    """weaver's training function, its loader batched by ``multiscale.weaver_batches`` unless
    ``batched_loader`` is False (same arguments as weaver's: the loader comes fifth)."""
    from multiscale.weaver_batches import batched

    def train(model, loss_func, opt, scheduler, train_loader, *args, **kwargs):
        loader = batched(train_loader) if batched_loader else train_loader
        return _weaver_loop("train", kwargs.get("extra_args"))(model, loss_func, opt, scheduler, loader, *args, **kwargs)

    return train


def get_evaluate_fn(data_config, batched_loader=True, **options):
    """weaver's evaluation function (validation and --predict), its loader batched likewise."""
    from multiscale.weaver_batches import batched

    def evaluate(model, test_loader, *args, **kwargs):
        loader = batched(test_loader) if batched_loader else test_loader
        return _weaver_loop("evaluate", kwargs.get("extra_args"))(model, loader, *args, **kwargs)

    return evaluate
