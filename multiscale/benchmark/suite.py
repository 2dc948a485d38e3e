"""The measurements that ``tools/benchmark.py`` runs: one row per configuration, the matched
configuration's training figure in rounds, and the sweeps over token count and batch size."""

import os
import platform
import statistics
import time
from collections import Counter

import torch

from multiscale.nn.attention import MultiHeadAttention, attention_kernel

from .configs import MATCHED_BATCH, build, inputs_for
from .onnx import onnx_figures
from .timing import eager_inference_throughput, forward_flops, peak_rss, train_throughput

OPTIMIZERS = ("adamw", "adamw_fused")


def _train_key(optimizer):
    return "train_events_per_s" if optimizer == "adamw" else f"train_{optimizer}_events_per_s"


def measure_config(name, train_batch, infer_batch, repeats):
    """Parameters, FLOPs, training events/s (both optimizers), eager and onnxruntime inference
    events/s, peak memory of training and inference."""
    model, info = build(name)
    train_inputs = inputs_for(info, train_batch)
    infer_inputs = inputs_for(info, infer_batch)
    flops = forward_flops(model, infer_inputs) / infer_batch
    row = {
        "config": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "forward_flops_per_event": flops,
        "train_flops_per_event": 3 * flops,  # forward + backward (~2x forward)
        "train_batch": train_batch,
    }
    for optimizer in OPTIMIZERS:
        with peak_rss() as mem:
            row[_train_key(optimizer)] = train_throughput(model, train_inputs, repeats, optimizer)
        row.setdefault("train_peak_rss_mb", mem["mb"])  # with torch's default AdamW
    row["train_attention_kernels"] = attention_kernels(model)
    row["infer_batch"] = infer_batch
    with peak_rss() as mem:
        row["eager_events_per_s"] = eager_inference_throughput(model, infer_inputs, repeats)
    row["eager_peak_rss_mb"] = mem["mb"]
    row["rss_method"] = mem["method"]
    inference_model, info = build(name, for_inference=True)
    inference_model.load_state_dict(model.state_dict())
    row.update(onnx_figures(inference_model, info, infer_inputs, repeats))
    return row


def attention_kernels(model):
    """Which kernel each attention layer ran in the last forward pass: {"sdpa": 2, "bmm": 3}."""
    return dict(Counter(m.last_kernel for m in model.modules() if isinstance(m, MultiHeadAttention)))


def matched_training(rounds=5, steps=20, batch=MATCHED_BATCH, compiled=False):
    """Training events/s of the matched configuration in ``rounds`` rounds of ``steps`` steps
    (median step of each round), both optimizers alternating: the spread between rounds shows how
    much the machine's other load moved the figure. ``compiled``: also a ``torch.compile``d copy
    (fused AdamW; its compile time is reported apart)."""
    model, info = build("matched")
    inputs = inputs_for(info, batch)
    models = {optimizer: model for optimizer in OPTIMIZERS}
    out = {}
    if compiled:
        start = time.perf_counter()
        models["adamw_fused_compiled"] = torch.compile(build("matched")[0])
        train_throughput(models["adamw_fused_compiled"], inputs, 1, "adamw_fused")  # compiles
        out["compile_seconds"] = time.perf_counter() - start
    per_round = {variant: [] for variant in models}
    loads = []
    for _ in range(rounds):
        loads.append(round(os.getloadavg()[0], 2))
        for variant, m in models.items():
            per_round[variant].append(train_throughput(m, inputs, steps, variant.replace("_compiled", "")))
    out.update({"config": "matched", "batch": batch, "rounds": rounds, "steps_per_round": steps, "loadavg": loads})
    for optimizer, values in per_round.items():
        out[optimizer] = {"median": statistics.median(values), "min": min(values), "max": max(values),
                          "rounds": values}
    return out


def token_sweep(name="cross", counts=(32, 64, 96, 128, 256), batch=128, repeats=3):
    """Cost against the number of constituent tokens (attention is quadratic in it): training with
    each CPU attention kernel (the 'auto' choice is the faster of the two) and eager inference."""
    rows = []
    for count in counts:
        model, info = build(name)
        inputs = inputs_for(info, batch, num_tokens={"pf": count})
        row = {"config": name, "pf_tokens": count, "batch": batch,
               "forward_flops_per_event": forward_flops(model, inputs) / batch}
        for kernel in ("bmm", "sdpa", "auto"):
            with attention_kernel(kernel):
                row[f"train_{kernel}_events_per_s"] = train_throughput(model, inputs, repeats, "adamw_fused")
        row["auto_kernels"] = attention_kernels(model)
        row["eager_events_per_s"] = eager_inference_throughput(model, inputs, repeats)
        rows.append(row)
    return rows


def batch_sweep(name="matched", batches=(16, 50, 128, 512), repeats=3):
    """Training (fused AdamW) and eager inference events/s against the batch size."""
    model, info = build(name)
    rows = []
    for batch in batches:
        inputs = inputs_for(info, batch)
        rows.append({"config": name, "batch": batch,
                     "train_events_per_s": train_throughput(model, inputs, repeats, "adamw_fused"),
                     "eager_events_per_s": eager_inference_throughput(model, inputs, repeats)})
    return rows


def machine():
    """What the figures were measured on."""
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
        "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "loadavg_at_start": os.getloadavg(),
    }
