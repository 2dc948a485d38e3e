"""Benchmarks of the model: throughput, FLOPs and memory of the model configurations, in PyTorch
and onnxruntime, through weaver's own training loop, and on a GPU. Not part of the installed
package: run from the repository root,

    python -m benchmarks --help

- ``configs``: the named configurations (the data configs' models and ``matched``, the original
  TensorFlow package's model_1 demo configuration) and their synthetic inputs;
- ``timing``: events/s of training steps and inference, FLOPs, peak memory;
- ``onnx``: export as ``weaver --export-onnx`` does, then onnxruntime speed and agreement;
- ``weaver_loop``: ``weaver --in-memory`` on ROOT files, read from its log (``weaver_timed``:
  weaver's training command with the wait for each batch timed);
- ``gpu``: bf16 autocast, ``torch.compile`` and model FLOP utilisation on a CUDA device;
- ``suite``: what ``python -m benchmarks`` measures, CPU suite and GPU suite;
- ``report``: the printed tables, the markdown tables of docs/performance.md and the JSON;
- ``reference/``: comparisons made once, outside the suite (the original TensorFlow model rebuilt
  in its own venv, A/B runs across checkouts, a per-operator profile of a training step).

Synthetic inputs (``multiscale.synthetic``) are used for the model figures: they are about the
model, not the physics. docs/performance.md has the figures, the commands and the method.
"""

from pathlib import Path

# data/ (the data configs), networks/ and tools/generate_events.py are read from the checkout
REPO_ROOT = Path(__file__).resolve().parents[1]
