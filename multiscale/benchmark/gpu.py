"""Accelerator figures: fp32 and bf16-autocast training, ``torch.compile``, model FLOP utilisation.

MFU = achieved training FLOP/s / the device's dense bf16 peak, with training FLOPs per event =
3 x the forward FLOPs counted by ``timing.forward_flops`` (backward ~ 2 x forward).
"""

import torch

from .configs import build, inputs_for
from .timing import eager_inference_throughput, forward_flops, train_throughput

# dense bf16 peak (FLOP/s) by device name, most specific first (NVIDIA data sheets)
GPU_PEAK_BF16 = (("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12))


def peak_bf16(device_name):
    """Dense bf16 peak of a CUDA device from its name, or None if it is not in the table."""
    return next((peak for name, peak in GPU_PEAK_BF16 if name in device_name), None)


def gpu_figures(names=("matched", "cross"), batch=512, repeats=10, device="cuda", compile=True, peak=None):
    """None when ``device`` is cuda and there is none; else a dict with one row per configuration.

    ``peak`` (FLOP/s) defaults to the table above for the CUDA device's name; ``device="cpu"`` runs
    the same code on the CPU (the tests do, with a made-up peak).
    """
    if device == "cuda" and not torch.cuda.is_available():
        return None
    device_name = torch.cuda.get_device_name() if device == "cuda" else device
    if peak is None:
        peak = peak_bf16(device_name)
    out = {"device": device_name, "peak_bf16_flops": peak, "batch": batch, "configs": []}
    for name in names:
        model, info = build(name)
        inputs = inputs_for(info, batch, device=device)
        flops = 3 * forward_flops(model.to(device), inputs) / batch
        row = {"config": name, "train_flops_per_event": flops}
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        row["fp32_events_per_s"] = train_throughput(model, inputs, repeats, "adamw_fused", device)
        row["bf16_events_per_s"] = train_throughput(model, inputs, repeats, "adamw_fused", device, torch.bfloat16)
        if compile:
            try:
                compiled = torch.compile(build(name)[0].to(device))
                row["bf16_compiled_events_per_s"] = train_throughput(compiled, inputs, repeats, "adamw_fused", device,
                                                                     torch.bfloat16)
            except Exception as err:  # compile needs a working triton: report rather than fail
                row["compile_error"] = f"{type(err).__name__}: {err}"[:300]
        if device == "cuda":
            row["train_peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
            torch.cuda.reset_peak_memory_stats()
        row["eager_infer_events_per_s"] = eager_inference_throughput(model, inputs, repeats, device)
        if device == "cuda":
            row["infer_peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
        if peak:
            best = max(v for k, v in row.items() if k.startswith("bf16") and k.endswith("events_per_s"))
            row["mfu"] = best * flops / peak
            row["mfu_formula"] = f"{best:.0f} events/s x {flops:.3g} FLOP/event / {peak:.3g} FLOP/s"
        out["configs"].append(row)
    return out
