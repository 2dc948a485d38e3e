"""Throughput, FLOPs and memory of the model configurations, in PyTorch and onnxruntime, and
through weaver's own training loop.

- ``configs``: the named configurations (the data configs' models and ``matched``, the original
  TensorFlow package's model_1 demo configuration) and their synthetic inputs;
- ``timing``: events/s of training steps and inference, FLOPs, peak memory;
- ``onnx``: export as ``weaver --export-onnx`` does, then onnxruntime speed and agreement;
- ``weaver_loop``: ``weaver --in-memory`` on ROOT files, read from its log;
- ``gpu``: bf16 autocast, ``torch.compile`` and model FLOP utilisation on a CUDA device;
- ``suite``: the tables that ``tools/benchmark.py`` prints and saves.

Synthetic inputs (``multiscale.synthetic``) are used for the model figures: they are about the
model, not the physics. docs/performance.md has the figures and the method.
"""

from .configs import CONFIGS, build, inputs_for
from .timing import eager_inference_throughput, forward_flops, train_throughput
from .weaver_loop import parse_weaver_log

__all__ = ["CONFIGS", "build", "inputs_for", "eager_inference_throughput", "forward_flops", "train_throughput",
           "parse_weaver_log"]
