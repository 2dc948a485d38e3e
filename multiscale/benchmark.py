"""Throughput, FLOPs and memory of the model configurations, in PyTorch and onnxruntime.

Synthetic inputs of the right shapes (``multiscale.synthetic``): these figures are about the
model, not the physics. ``weaver_throughput`` runs the real weaver training loop on ROOT files so
that the data-loading overhead can be set beside the pure model figure. ``tools/benchmark.py`` is
the command line; docs/performance.md has the figures and the method.
"""

import ctypes
import gc
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from multiscale.onnx_export import export_like_weaver
from multiscale.synthetic import synthetic_inputs
from multiscale.weaver_io import REPO_ROOT, build_model, load_data_config

# name -> (data config, network options)
CONFIGS = {
    "jets": ("jets.yaml", {}),
    "kin": ("kin.yaml", {}),
    "concat": ("jets_kin.yaml", {"fusion": "concat"}),
    "cross": ("jets_kin.yaml", {"fusion": "cross"}),
    "cross3": ("jet1_jet2_kin.yaml", {"fusion": "cross"}),
    "cross_paper": ("jets_kin.yaml", {"fusion": "cross", "preset": "paper"}),
    # the original TensorFlow package's model_1 demo (input.py): one stream of 50 tokens x 7
    # features, 5 heads, 3 layers, token MLP 64 wide, head MLP 128-64, dropout 0.2, batch 50.
    # Tokens are embedded here, at width 40 = 8 per head (the original attends with 5 heads of
    # key_dim 7 = 35 on the raw 7 features); ffn_ratio 1.6 gives its 64-wide token MLP.
    "matched": (None, {"jet_dim": 40, "jet_heads": 5, "jet_layers": 3, "ffn_ratio": 1.6,
                       "mlp_dims": (128, 64), "dropout": 0.2}),
}
MATCHED_SHAPES = {"pf_features": (-1, 7, 50), "pf_mask": (-1, 1, 50)}
MATCHED_BATCH = 50  # the original demo's batch size
TRAIN_BATCH = 128  # the batch of the fusion study (tools/study_fusion.sh)
INFER_BATCH = 256


def matched_data_config():
    """A stand-in for a weaver DataConfig with one 50 x 7 particle stream and two classes."""
    return SimpleNamespace(input_names=tuple(MATCHED_SHAPES), input_shapes=MATCHED_SHAPES, label_value=["s", "b"])


_DATA_CONFIGS = {}


def build(name, for_inference=False, seed=0, **overrides):
    """(model, model_info) of a named configuration, as weaver's get_model returns them."""
    config_file, options = CONFIGS[name]
    if config_file is None:
        data_config = matched_data_config()
    else:
        if config_file not in _DATA_CONFIGS:
            _DATA_CONFIGS[config_file] = load_data_config(REPO_ROOT / "data" / config_file)
        data_config = _DATA_CONFIGS[config_file]
    torch.manual_seed(seed)
    return build_model(data_config, for_inference=for_inference, **{**options, **overrides})


def inputs_for(model_info, batch_size, num_tokens=None, device="cpu"):
    inputs = synthetic_inputs(model_info, batch_size, num_tokens=num_tokens,
                              generator=torch.Generator().manual_seed(batch_size))
    return [x.to(device) for x in inputs]


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def median_time(fn, repeats, warmup=2, device="cpu"):
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls (seconds)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---------------------------------------------------------------------------------- FLOPs, memory


def forward_flops(model, inputs):
    """FLOPs of one forward pass as counted by torch.utils.flop_counter (matrix products and
    attention only: normalisation, activations and softmax are not counted)."""
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*inputs)
    return counter.get_total_flops()


def _rss_kb(field):
    with open("/proc/self/status") as f:
        match = re.search(field + r":\s+(\d+) kB", f.read())
    return int(match.group(1)) if match else None


@contextmanager
def peak_rss():
    """Peak resident-memory growth (MB) of the block, in ``result["mb"]``.

    Method: free what Python and glibc hold (gc, malloc_trim), reset the kernel's RSS high-water
    mark (``echo 5 > /proc/self/clear_refs``), run the block, read VmHWM - VmRSS(before) from
    /proc/self/status. Where that is not possible the growth of getrusage's ru_maxrss is used
    (a process-wide high-water mark: 0 when an earlier block peaked higher). ``result["method"]``
    says which.
    """
    result = {"mb": None, "method": "VmHWM after clear_refs"}
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _rss_kb("VmRSS")
    except OSError:
        before = None
    if before is None:
        result["method"] = "getrusage ru_maxrss growth"
        before_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        yield result
    finally:
        if before is not None:
            result["mb"] = (_rss_kb("VmHWM") - before) / 1024
        else:
            result["mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_max) / 1024


# --------------------------------------------------------------------------------- PyTorch timing


def make_optimizer(model, optimizer="adamw"):
    """'adamw': torch's default AdamW, what ``weaver --optimizer adamw`` builds (on CPU a loop over
    the parameters); 'adamw_fused': AdamW(fused=True), ``--optimizer-option fused True`` in weaver."""
    if optimizer == "adamw_fused":
        return torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    return torch.optim.AdamW(model.parameters(), lr=1e-4)


def train_throughput(model, inputs, repeats=5, optimizer="adamw", device="cpu", autocast_dtype=None):
    """Training events/s: zero_grad, forward, cross-entropy, backward, optimizer step."""
    model.train().to(device)
    labels = (torch.arange(inputs[0].shape[0], device=device) % 2).long()
    opt = make_optimizer(model, optimizer)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=autocast_dtype or torch.bfloat16,
                            enabled=autocast_dtype is not None):
            loss = torch.nn.functional.cross_entropy(model(*inputs), labels)
        loss.backward()
        opt.step()

    return inputs[0].shape[0] / median_time(step, repeats, device=device)


def eager_inference_throughput(model, inputs, repeats=5, device="cpu"):
    model.eval().to(device)

    def run():
        with torch.inference_mode():
            model(*inputs)

    return inputs[0].shape[0] / median_time(run, repeats, device=device)


# ------------------------------------------------------------------------------------ onnxruntime


def ort_session(path, threads, level="all", optimized_path=None):
    """An onnxruntime CPU session with explicit settings (graph optimisation level, intra-op
    threads = torch's thread count, i.e. the physical cores by default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[level]
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # not the warning that a saved optimised graph is machine-specific
    if optimized_path:
        options.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _op_counts(path):
    import onnx

    return Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def onnx_figures(model, model_info, inputs, repeats=5, threads=None):
    """Export as ``weaver --export-onnx`` does, run in onnxruntime; events/s, max |torch - onnx|,
    and what the graph optimiser made of the graph (node counts, fused operators)."""
    threads = threads or torch.get_num_threads()
    feed = {name: np.ascontiguousarray(x.cpu().numpy(), dtype=np.float32)
            for name, x in zip(model_info["input_names"], inputs)}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        optimized = os.path.join(tmp, "model.opt.onnx")
        export_like_weaver(model.eval().cpu(), model_info, path)
        session = ort_session(path, threads, "all", optimized)
        speed = inputs[0].shape[0] / median_time(lambda: session.run(None, feed), repeats)
        got = session.run(None, feed)[0]
        with torch.no_grad():
            expected = model(*[x.cpu() for x in inputs]).numpy()
        diff = float("inf") if np.isnan(got).any() else float(np.abs(expected - got).max())
        exported, after = _op_counts(path), _op_counts(optimized)
    standard = {"MatMul", "Add", "Mul", "Softmax", "Transpose", "Reshape", "Gemm", "Div", "Sub", "Erf",
                "Concat", "Slice", "Gather", "Unsqueeze", "Shape", "Cast", "Where", "ReduceMean", "ReduceSum",
                "Pow", "Sqrt", "Expand", "Greater", "Not", "And", "ConstantOfShape", "Equal", "Pad", "Squeeze",
                "BatchNormalization", "Identity", "Constant", "Clip", "Max", "Min", "Sigmoid", "Range"}
    return {
        "onnx_events_per_s": speed,
        "onnx_max_abs_diff": diff,
        "onnx_nodes_exported": sum(exported.values()),
        "onnx_nodes_optimized": sum(after.values()),
        "onnx_fused_ops": {op: n for op, n in sorted(after.items()) if op not in standard},
    }


# ---------------------------------------------------------------------------------- measurements


def measure_config(name, train_batch, infer_batch, repeats, optimizers=("adamw", "adamw_fused"), onnx=True):
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
    for optimizer in optimizers:
        key = "train_events_per_s" if optimizer == "adamw" else f"train_{optimizer}_events_per_s"
        with peak_rss() as mem:
            row[key] = train_throughput(model, train_inputs, repeats, optimizer)
        row.setdefault("train_peak_rss_mb", mem["mb"])
        row["rss_method"] = mem["method"]
    row["infer_batch"] = infer_batch
    with peak_rss() as mem:
        row["eager_events_per_s"] = eager_inference_throughput(model, infer_inputs, repeats)
    row["eager_peak_rss_mb"] = mem["mb"]
    if onnx:
        inference_model, info = build(name, for_inference=True)
        inference_model.load_state_dict(model.state_dict())
        row.update(onnx_figures(inference_model, info, infer_inputs, repeats))
    return row


def token_sweep(name="cross", counts=(32, 64, 128, 256), batch=64, repeats=3):
    """Cost against the number of constituent tokens (attention is quadratic in it)."""
    rows = []
    for count in counts:
        model, info = build(name)
        inputs = inputs_for(info, batch, num_tokens={"pf": count})
        rows.append({
            "config": name, "pf_tokens": count, "batch": batch,
            "forward_flops_per_event": forward_flops(model, inputs) / batch,
            "train_events_per_s": train_throughput(model, inputs, repeats),
            "eager_events_per_s": eager_inference_throughput(model, inputs, repeats),
        })
    return rows


def batch_sweep(name="matched", batches=(16, 50, 128, 512), repeats=3, optimizer="adamw"):
    model, info = build(name)
    rows = []
    for batch in batches:
        inputs = inputs_for(info, batch)
        rows.append({"config": name, "batch": batch,
                     "train_events_per_s": train_throughput(model, inputs, repeats, optimizer),
                     "eager_events_per_s": eager_inference_throughput(model, inputs, repeats)})
    return rows


# dense bf16 peak (FLOP/s) of the GPUs this project may be lent, for model FLOP utilisation
GPU_PEAK_BF16 = {"H200": 989e12, "H100": 989e12}  # SXM figures; an H100 PCIe peaks at 756e12


def gpu_figures(names=("matched", "cross"), batch=512, repeats=10):
    """GPU only (never run in this project so far): fp32 and bf16-autocast training, torch.compile,
    and model FLOP utilisation = achieved training FLOP/s / the device's dense bf16 peak."""
    if not torch.cuda.is_available():
        return None
    device_name = torch.cuda.get_device_name()
    peak = next((v for k, v in GPU_PEAK_BF16.items() if k in device_name), None)
    out = {"device": device_name, "peak_bf16_flops": peak, "batch": batch, "configs": []}
    for name in names:
        model, info = build(name)
        inputs = inputs_for(info, batch, device="cuda")
        flops = 3 * forward_flops(model.cuda(), inputs) / batch
        row = {"config": name, "train_flops_per_event": flops}
        row["fp32_events_per_s"] = train_throughput(model, inputs, repeats, "adamw_fused", "cuda")
        row["bf16_events_per_s"] = train_throughput(model, inputs, repeats, "adamw_fused", "cuda", torch.bfloat16)
        try:
            compiled = torch.compile(build(name)[0].cuda())
            row["bf16_compiled_events_per_s"] = train_throughput(compiled, inputs, repeats, "adamw_fused", "cuda",
                                                                 torch.bfloat16)
        except Exception as err:  # compile needs a working triton; report rather than fail
            row["compile_error"] = f"{type(err).__name__}: {err}"[:300]
        torch.cuda.reset_peak_memory_stats()
        row["eager_bf16_infer_events_per_s"] = eager_inference_throughput(model, inputs, repeats, "cuda")
        row["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
        if peak:
            best = max(v for k, v in row.items() if k.startswith("bf16") and k.endswith("events_per_s"))
            row["mfu"] = best * flops / peak
        out["configs"].append(row)
    return out


# ---------------------------------------------------------------------------------------- weaver

_PROCESSED = re.compile(r"Processed (\d+) entries in total \(avg\. speed ([\d.]+) entries/s\)")


def parse_weaver_log(text):
    """Training-epoch speeds from weaver's log: each 'Processed N entries ... (avg. speed X
    entries/s)' line directly followed by 'Train AvgLoss' (validation lines are not)."""
    lines = text.splitlines()
    epochs = []
    for i, line in enumerate(lines):
        match = _PROCESSED.search(line)
        if match and i + 1 < len(lines) and "Train AvgLoss" in lines[i + 1]:
            epochs.append({"entries": int(match.group(1)), "events_per_s": float(match.group(2))})
    return epochs


def weaver_throughput(train_globs, data_config="data/jets_kin.yaml", batch=50, steps=60, epochs=2, options=(),
                      extra=(), threads=None):
    """Training events/s of the real weaver loop, ``--in-memory --steps-per-epoch``.

    weaver times each epoch's loop itself (the 'avg. speed' of its log). With --in-memory the
    ROOT files are read and preprocessed when the first epoch's loader starts, inside that timer:
    epoch 1 = loading + training, epoch 2 = the steady loop (batches from memory, weaver's
    per-step clip_grad_norm_, .item() calls and progress bar included). The wall clock of the
    whole command (start-up, validation, saving) is reported beside them.
    """
    options = [x for name, value in options for x in ("-o", name, repr(value))]
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "train.log")
        cmd = [sys.executable, "-m", "weaver.train", "--data-config", str(data_config),
               "--network-config", "networks/multiscale_cross.py", "--custom-functions", "data/jet_functions.py",
               *options, "--gpus", "", "--data-train", *train_globs, "--in-memory", "--steps-per-epoch", str(steps),
               "--num-epochs", str(epochs), "--batch-size", str(batch), "--start-lr", "1e-3",
               "--optimizer", "adamw", "--num-workers", "0", "--fetch-step", "1",
               "--model-prefix", os.path.join(tmp, "net"), "--log", log, *extra]
        env = dict(os.environ)
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        text = open(log).read() if os.path.exists(log) else ""
        if proc.returncode:
            raise RuntimeError(f"weaver failed ({proc.returncode}):\n{(proc.stderr or text)[-3000:]}")
    per_epoch = parse_weaver_log(text)
    return {
        "command": " ".join(cmd[:1] + ["-m", "weaver.train"] + cmd[3:]),
        "batch": batch, "steps_per_epoch": steps,
        "epochs": per_epoch,
        "steady_events_per_s": per_epoch[-1]["events_per_s"] if per_epoch else None,
        "first_epoch_events_per_s": per_epoch[0]["events_per_s"] if per_epoch else None,
        "wall_s": wall,
        "loadavg": os.getloadavg(),
    }


def pure_model_reference(name="cross", batch=50, repeats=10):
    """The pure-model training figure with weaver's settings (AdamW, batch 50), for comparison."""
    model, info = build(name)
    return train_throughput(model, inputs_for(info, batch), repeats)


# --------------------------------------------------------------------------------------- machine


def machine():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import onnxruntime

    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
        "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "loadavg_at_start": os.getloadavg(),
    }
