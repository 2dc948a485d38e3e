"""Accelerator figures: fp32 and bf16-autocast training with and without ``torch.compile``,
inference, peak GPU memory, model FLOP utilisation, and a profile of where a training step's time goes.

MFU = achieved training FLOP/s / the device's dense bf16 peak, with training FLOPs per event =
3 x the forward FLOPs counted by ``timing.forward_flops`` (backward ~ 2 x forward).
"""

import re
import subprocess
import time
from collections import defaultdict

import torch

from .configs import build, inputs_for
from .timing import eager_inference_throughput, forward_flops, train_throughput

# dense bf16 peak (FLOP/s) by device name, most specific first (NVIDIA data sheets)
GPU_PEAK_BF16 = (("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12))
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
_COMPILED = {}  # (config, precision) -> the torch.compile'd model of gpu_figures


def peak_bf16(device_name):
    """Dense bf16 peak of a CUDA device from its name, or None if it is not in the table."""
    return next((peak for name, peak in GPU_PEAK_BF16 if name in device_name), None)


def _reset_memory(device):
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_memory_mb(device):
    return torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None


def device_info(device="cuda"):
    """Name, memory, versions and the clocks nvidia-smi reads (read only), for the JSON."""
    if device != "cuda":
        return {"device": device}
    props = torch.cuda.get_device_properties(0)
    info = {"device": torch.cuda.get_device_name(), "memory_gib": props.total_memory / 2**30,
            "multiprocessors": props.multi_processor_count, "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "tf32_matmul": torch.backends.cuda.matmul.allow_tf32}
    try:
        info["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit",
             "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError) as err:
        info["nvidia_smi"] = repr(err)
    return info


def matmul_ceiling(device="cuda", n=8192, repeats=10):
    """FLOP/s of an n x n x n bf16 matrix product on random data (median of ``repeats`` after 3
    warm-ups, timed with CUDA events): the ceiling this card reaches, beside the data sheet's peak."""
    if device != "cuda":
        return None
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    del a, b
    return 2 * n**3 / sorted(times)[len(times) // 2]


def _mfu(row, variants, flops, peak):
    """MFU of each bf16 training variant, and the arithmetic of the best one."""
    if not peak:
        return
    for variant in variants:
        if row.get(f"train_{variant}_events_per_s"):
            row[f"mfu_{variant}"] = row[f"train_{variant}_events_per_s"] * flops / peak
    best = max((v for v in variants if f"mfu_{v}" in row and v.startswith("bf16")), default=None,
               key=lambda v: row[f"mfu_{v}"])
    if best:
        speed = row[f"train_{best}_events_per_s"]
        row["mfu"] = row[f"mfu_{best}"]
        row["mfu_variant"] = best
        row["mfu_formula"] = (f"{speed:.0f} events/s x {flops:.4g} FLOP/event = {speed * flops:.4g} FLOP/s; "
                              f"/ {peak:.4g} FLOP/s = {100 * speed * flops / peak:.2f}%")


def gpu_figures(names=("cross", "cross_pair"), batches=(512, 1024), repeats=10, device="cuda", compile=True,
                peak=None, compile_budget_s=None, log=print, compile_precisions=("bf16", "fp32"), cudagraphs=False):
    """None when ``device`` is cuda and there is none; else a dict with one row per (configuration, batch).

    Each row: training events/s and peak memory in fp32 and bf16 autocast (fused AdamW), eager, and
    with ``torch.compile`` (``dynamic=False``: one static graph per batch size) when ``compile``;
    inference events/s (eager, fp32 and bf16 autocast) and its peak memory; MFU of each bf16
    variant. The eager figures are taken first, then the compiled ones in order of importance
    (``compile_precisions`` in their order, the first configuration first; with ``cudagraphs``,
    then bf16 with ``mode="reduce-overhead"`` (CUDA graphs) for the first configuration); once
    ``compile_budget_s`` seconds have gone into compiled figures, the rest are skipped and said
    so in ``compile_skipped``.
    ``peak`` (FLOP/s) defaults to the table above for the CUDA device's name; ``device="cpu"`` runs
    the same code on the CPU (the tests do, with a made-up peak).
    """
    if device == "cuda" and not torch.cuda.is_available():
        return None
    info = device_info(device)
    if peak is None and device == "cuda":
        peak = peak_bf16(info["device"])
    out = {**info, "peak_bf16_flops": peak, "measured_bf16_matmul_flops": matmul_ceiling(device),
           "batches": list(batches), "repeats": repeats, "configs": []}
    rows = {}
    for name in names:
        for batch in batches:
            model, model_info = build(name)
            inputs = inputs_for(model_info, batch, device=device)
            flops = 3 * forward_flops(model.to(device), inputs) / batch
            row = {"config": name, "batch": batch, "parameters": sum(p.numel() for p in model.parameters()),
                   "train_flops_per_event": flops}
            for precision, dtype in PRECISIONS.items():
                _reset_memory(device)
                row[f"train_{precision}_events_per_s"] = train_throughput(model, inputs, repeats, "adamw_fused",
                                                                          device, dtype)
                row[f"train_{precision}_peak_memory_mb"] = _peak_memory_mb(device)
            for precision, dtype in PRECISIONS.items():
                _reset_memory(device)
                with torch.autocast(device_type=device, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                    row[f"infer_{precision}_events_per_s"] = eager_inference_throughput(model, inputs, repeats, device)
                row[f"infer_{precision}_peak_memory_mb"] = _peak_memory_mb(device)
            rows[name, batch] = row
            out["configs"].append(row)
            log(f"gpu eager {name} batch {batch}: train fp32 {row['train_fp32_events_per_s']:.0f}, "
                f"bf16 {row['train_bf16_events_per_s']:.0f}, infer bf16 {row['infer_bf16_events_per_s']:.0f} ev/s")
            del model, inputs
    if compile:
        spent = 0.0
        plan = [(precision, name, "default") for precision in compile_precisions for name in names]
        if cudagraphs:
            plan.append(("bf16", names[0], "reduce-overhead"))
        for precision, name, mode in plan:
            model, model_info = build(name)
            compiled = torch.compile(model.to(device), dynamic=False, mode=mode)
            for batch in batches:
                row = rows[name, batch]
                key = f"train_{precision}_compiled" + ("_cudagraphs" if mode == "reduce-overhead" else "")
                if compile_budget_s is not None and spent > compile_budget_s:
                    row.setdefault("compile_skipped", []).append(f"{precision} {mode}: compile budget spent")
                    continue
                inputs = inputs_for(model_info, batch, device=device)
                _reset_memory(device)
                start = time.perf_counter()
                try:
                    row[f"{key}_events_per_s"] = train_throughput(compiled, inputs, repeats, "adamw_fused",
                                                                  device, PRECISIONS[precision])
                    row[f"{key}_peak_memory_mb"] = _peak_memory_mb(device)
                except Exception as err:  # compile needs a working triton: report rather than fail
                    row.setdefault("compile_error", []).append(f"{precision}: {type(err).__name__}: {err}"[:300])
                row[f"{key}_seconds"] = time.perf_counter() - start  # compile + the timed steps
                spent += row[f"{key}_seconds"]
                log(f"gpu compiled ({mode}) {precision} {name} batch {batch}: "
                    f"{row.get(f'{key}_events_per_s', 0):.0f} ev/s ({row[f'{key}_seconds']:.0f} s)")
            if mode == "default":
                _COMPILED[name, precision] = compiled  # the profile reuses it: no second compile
            del compiled, model
    for row in out["configs"]:
        _mfu(row, ("bf16", "bf16_compiled", "bf16_compiled_cudagraphs", "fp32", "fp32_compiled"),
             row["train_flops_per_event"], peak)
    return out


# ------------------------------------------------------------------------------- profile

_CATEGORIES = (  # (category, pattern of the kernel name), first match wins
    ("attention (SDPA kernels)", r"fmha|flash|attention|cutlass.*Kernel.*Attention|mem_eff"),
    ("optimizer (fused AdamW)", r"adam|multi_tensor"),
    ("matrix products (cuBLAS/CUTLASS)", r"gemm|gemv|cutlass|nvjet|xmma|cublas|sm90_|sm80_|ampere_|splitK"),
    ("layer norm", r"layer_norm|LayerNorm"),
    ("softmax", r"softmax"),
    ("triton (fused by torch.compile)", r"^triton_"),
    ("reductions", r"reduce"),
    ("copies (memcpy, cat, transpose)", r"[Mm]emcpy|[Mm]emset|copy|CatArray|cat_|transpose"),
    ("element-wise", r"elementwise|vectorized|unrolled|pointwise"),
)
_SCOPES = {"Embed": "embedding", "PairEmbed": "pair embedding", "MultiHeadAttention": "attention",
           "LayerNorm": "layer norm", "Sequential": "feed-forward / head MLP"}


def _category(kernel):
    return next((c for c, pattern in _CATEGORIES if re.search(pattern, kernel)), "other")


def _scope_hooks(model):
    """Forward hooks that open a profiler range 'fwd: <kind>' around each module of the kinds in
    _SCOPES (outermost only), so that the forward kernels can be attributed to model parts."""
    handles, stack = [], []
    inside = {"depth": 0}

    def pre(module, args, kind):
        if inside["depth"] == 0:
            rf = torch.autograd.profiler.record_function(f"fwd: {kind}")
            rf.__enter__()
            stack.append(rf)
        inside["depth"] += 1

    def post(module, args, output):
        inside["depth"] -= 1
        if inside["depth"] == 0:
            stack.pop().__exit__(None, None, None)

    for module in model.modules():
        kind = _SCOPES.get(type(module).__name__)
        if kind:
            handles.append(module.register_forward_pre_hook(lambda m, a, kind=kind: pre(m, a, kind)))
            handles.append(module.register_forward_hook(post))
    return handles


def profile_training(name="cross", batch=512, device="cuda", precision="bf16", steps=5, compiled=False,
                     row_limit=25):
    """torch.profiler over ``steps`` training steps (after warm-up): wall ms per step, GPU kernel ms
    per step (busy fraction = kernel time / wall time), kernel time by category and by model part
    (forward only; the backward runs outside the modules' ranges), and the top kernels table."""
    from torch.profiler import ProfilerActivity, profile

    from .timing import training_step

    model, model_info = build(name)
    model = model.to(device)
    handles = [] if compiled else _scope_hooks(model)
    runnable = model
    if compiled:
        runnable = _COMPILED.get((name, precision))
        if runnable is None:
            runnable = torch.compile(model, dynamic=False)
    inputs = inputs_for(model_info, batch, device=device)
    step = training_step(runnable, inputs, "adamw_fused", device, PRECISIONS[precision])
    for _ in range(3):
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    if device == "cuda":
        torch.cuda.synchronize()
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if device == "cuda":
            torch.cuda.synchronize()
        wall = (time.perf_counter() - start) / steps
    for handle in handles:
        handle.remove()

    kernels = defaultdict(float)  # us per kernel name, over all steps
    scopes = defaultdict(float)  # us of the kernels launched inside each 'fwd: ' range
    n_kernels = 0
    for event in prof.events():
        if event.name.startswith("fwd: "):
            if event.device_type == torch.autograd.DeviceType.CPU:  # its kernels (the GPU-side copy of
                scopes[event.name[5:]] += event.device_time_total  # the range spans gaps too: skipped)
            continue
        if event.device_type == torch.autograd.DeviceType.CUDA:
            kernels[event.name] += event.time_range.elapsed_us()
            n_kernels += 1
    by_category = defaultdict(float)
    for kernel, us in kernels.items():
        by_category[_category(kernel)] += us
    busy = sum(kernels.values()) / steps / 1e3
    averages = prof.key_averages()
    scopes = {k: us / steps / 1e3 for k, us in scopes.items()}
    table = None
    for sort_by in (("self_device_time_total", "self_cuda_time_total") if device == "cuda" else ("self_cpu_time_total",)):
        try:  # the sort keys were renamed across torch versions
            table = averages.table(sort_by=sort_by, row_limit=row_limit, max_name_column_width=70)
            break
        except Exception as err:
            table = f"(table failed: {err})"
    top = sorted(kernels.items(), key=lambda kv: -kv[1])[:row_limit]
    return {
        "config": name, "batch": batch, "precision": precision, "compiled": compiled, "steps": steps,
        "wall_ms_per_step": wall * 1e3, "events_per_s": batch / wall,
        "gpu_kernel_ms_per_step": busy, "gpu_busy_fraction": busy / (wall * 1e3) if wall else None,
        "kernels_per_step": n_kernels / steps,
        "kernel_ms_per_step_by_category": {c: us / steps / 1e3 for c, us in sorted(by_category.items(),
                                                                                    key=lambda kv: -kv[1])},
        "forward_ms_per_step_by_part": dict(sorted(scopes.items(), key=lambda kv: -kv[1])),
        "top_kernels": [{"kernel": k[:160], "ms_per_step": us / steps / 1e3, "category": _category(k)}
                        for k, us in top],
        "table": table,
    }


def attention_backends(name="cross", batches=(512, 1024), device="cuda", precision="bf16", repeats=10):
    """Eager training events/s with each SDPA backend forced: cuDNN, memory-efficient and math.
    Flash attention takes no mask, so it is not among them. (The CPU training kernel of the
    network option ``cpu_kernels`` does not run on a GPU.)"""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = {"cudnn": SDPBackend.CUDNN_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                "math": SDPBackend.MATH}
    rows = []
    for batch in batches:
        model, model_info = build(name)
        inputs = inputs_for(model_info, batch, device=device)
        row = {"config": name, "batch": batch, "precision": precision}
        for label, backend in backends.items():
            try:
                with sdpa_kernel([backend]):
                    row[f"{label}_events_per_s"] = train_throughput(model, inputs, repeats, "adamw_fused", device,
                                                                    PRECISIONS[precision])
            except Exception as err:  # a backend refusing these shapes
                row[f"{label}_error"] = f"{type(err).__name__}: {err}"[:300]
        rows.append(row)
        del model, inputs
    return rows
