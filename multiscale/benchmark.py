"""Throughput, FLOPs and memory of the model configurations, in PyTorch and onnxruntime.

Synthetic inputs of the right shapes (``multiscale.synthetic``): these figures are about the
model, not the physics. ``weaver_throughput`` measures the real weaver loop on ROOT files so
that the data-loading overhead can be set beside the pure model figure.
"""

import os
import platform
import re
import resource
import statistics
import subprocess
import tempfile
import time
from types import SimpleNamespace

import torch
from torch.utils.flop_counter import FlopCounterMode

from multiscale.onnx_export import export_like_weaver, max_abs_difference, onnx_session, run_onnx
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
    # the original TensorFlow package's model_1 demo: one stream of 50 tokens x 7 features,
    # 5 heads, 3 layers (batch 50). Width 40 = 8 per head, since tokens are embedded here.
    "matched_model1": (None, {"jet_dim": 40, "jet_heads": 5, "jet_layers": 3, "mlp_dims": (128, 64), "ffn_ratio": 2.0}),
}
MATCHED_SHAPES = {"pf_features": (-1, 7, 50), "pf_mask": (-1, 1, 50)}


def matched_data_config():
    """A stand-in for a weaver DataConfig with one 50 x 7 particle stream and two classes."""
    return SimpleNamespace(input_names=tuple(MATCHED_SHAPES), input_shapes=MATCHED_SHAPES, label_value=["s", "b"])


def build(name, for_inference=False, **overrides):
    config_file, options = CONFIGS[name]
    data_config = matched_data_config() if config_file is None else load_data_config(REPO_ROOT / "data" / config_file)
    torch.manual_seed(0)
    return build_model(data_config, for_inference=for_inference, **{**options, **overrides})


def _median_time(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward_flops(model, inputs):
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            model(*inputs)
    return counter.get_total_flops()


def train_throughput(model, inputs, repeats=5, device="cpu", autocast_dtype=None):
    model.train().to(device)
    inputs = [x.to(device) for x in inputs]
    labels = torch.zeros(inputs[0].shape[0], dtype=torch.long, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        with torch.autocast(device_type=device, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss = torch.nn.functional.cross_entropy(model(*inputs), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return inputs[0].shape[0] / _median_time(step, repeats)


def eager_inference_throughput(model, inputs, repeats=5):
    model.eval()

    def run():
        with torch.inference_mode():
            model(*inputs)

    return inputs[0].shape[0] / _median_time(run, repeats)


def onnx_figures(model, model_info, inputs, repeats=5):
    """(events/s in onnxruntime, max |torch - onnx|) for the exported model."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        export_like_weaver(model, model_info, path)
        session = onnx_session(path, threads=torch.get_num_threads())
        arrays = [x.numpy() for x in inputs]
        speed = inputs[0].shape[0] / _median_time(lambda: run_onnx(session, model_info["input_names"], arrays), repeats)
        return speed, max_abs_difference(model, session, model_info["input_names"], inputs)


def max_rss_mb():
    """The process's peak resident memory so far (MB): a high-water mark, not a per-model figure."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def inputs_for(model_info, batch_size, num_tokens=None):
    return synthetic_inputs(model_info, batch_size, num_tokens=num_tokens,
                            generator=torch.Generator().manual_seed(batch_size))


def measure_config(name, train_batch, infer_batch, repeats):
    model, info = build(name)
    train_inputs = inputs_for(info, train_batch)
    infer_inputs = inputs_for(info, infer_batch)
    flops = forward_flops(model, infer_inputs[:]) / infer_batch
    row = {
        "config": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "forward_flops_per_event": flops,
        "train_flops_per_event": 3 * flops,  # forward + backward (~2x forward)
        "train_batch": train_batch,
        "train_events_per_s": train_throughput(model, train_inputs, repeats),
        "infer_batch": infer_batch,
        "eager_events_per_s": eager_inference_throughput(model, infer_inputs, repeats),
    }
    inference_model, info = build(name, for_inference=True)
    inference_model.load_state_dict(model.state_dict())
    row["onnx_events_per_s"], row["onnx_max_abs_diff"] = onnx_figures(inference_model.eval(), info, infer_inputs, repeats)
    row["max_rss_mb"] = max_rss_mb()
    return row


def token_sweep(name="cross", counts=(32, 64, 128, 256), batch=64, repeats=3):
    """Cost against the number of constituent tokens (attention is quadratic in it)."""
    rows = []
    for count in counts:
        model, info = build(name)
        inputs = inputs_for(info, batch, num_tokens={"pf": count})
        rows.append({
            "config": name, "tokens": count, "batch": batch,
            "forward_flops_per_event": forward_flops(model, inputs) / batch,
            "train_events_per_s": train_throughput(model, inputs, repeats),
            "eager_events_per_s": eager_inference_throughput(model, inputs, repeats),
        })
    return rows


def batch_sweep(name="cross", batches=(16, 64, 256, 1024), repeats=3):
    model, info = build(name)
    return [{"config": name, "batch": b,
             "eager_events_per_s": eager_inference_throughput(model, inputs_for(info, b), repeats)} for b in batches]


# dense bf16 peak of the GPUs this project is lent (FLOP/s), for model FLOP utilisation
GPU_PEAK_BF16 = {"H100": 989e12, "H200": 989e12}


def gpu_figures(name="cross", batch=512, repeats=10):
    """bf16 autocast and torch.compile training on a GPU, with model FLOP utilisation (MFU)."""
    model, info = build(name)
    inputs = inputs_for(info, batch)
    flops = 3 * forward_flops(model, inputs) / batch
    device_name = torch.cuda.get_device_name()
    peak = next((v for k, v in GPU_PEAK_BF16.items() if k in device_name), None)
    out = {"device": device_name, "batch": batch, "train_flops_per_event": flops}
    out["bf16_events_per_s"] = train_throughput(model, inputs, repeats, "cuda", torch.bfloat16)
    compiled = torch.compile(build(name)[0].cuda())
    out["bf16_compiled_events_per_s"] = train_throughput(compiled, inputs, repeats, "cuda", torch.bfloat16)
    if peak:
        best = max(out["bf16_events_per_s"], out["bf16_compiled_events_per_s"])
        out["mfu"] = best * flops / peak
        out["mfu_formula"] = f"events/s x {flops:.3g} FLOP/event / {peak:.3g} FLOP/s peak"
    return out


def weaver_throughput(data_config, train_globs, batch=50, steps=40, extra=()):
    """Training events/s of the real weaver loop (--in-memory), read from weaver's own log line
    'Processed N entries in total (avg. speed X entries/s)' of the first epoch."""
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "train.log")
        cmd = ["weaver", "--data-config", str(data_config), "--network-config", "networks/multiscale_cross.py",
               "--custom-functions", "data/jet_functions.py", "--gpus", "", "--data-train", *train_globs,
               "--in-memory", "--steps-per-epoch", str(steps), "--num-epochs", "1", "--batch-size", str(batch),
               "--optimizer", "adamw", "--start-lr", "1e-3", "--num-workers", "0", "--model-prefix",
               os.path.join(tmp, "net"), "--log", log, *extra]
        start = time.perf_counter()
        subprocess.run(cmd, cwd=REPO_ROOT, check=True, capture_output=True)
        wall = time.perf_counter() - start
        with open(log) as f:
            speeds = re.findall(r"Processed (\d+) entries in total \(avg\. speed ([\d.]+) entries/s\)", f.read())
    entries, speed = speeds[0]  # the first is the training epoch
    return {"weaver_train_events_per_s": float(speed), "entries": int(entries), "wall_s_including_startup": wall}


def machine():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "loadavg_at_start": os.getloadavg(),
    }
