"""Events/s of training steps and inference in PyTorch eager, FLOPs per event, peak memory."""

import ctypes
import gc
import re
import resource
import statistics
import time
from contextlib import contextmanager

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


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


def forward_flops(model, inputs):
    """FLOPs of one forward pass counted by torch.utils.flop_counter: matrix products, attention
    included (counted on SDPA's math backend, two batched matrix products: the counter has no
    formula for the CPU flash kernel); normalisation, activations and softmax are not counted."""
    model.eval()
    with sdpa_kernel([SDPBackend.MATH]), FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*inputs)
    return counter.get_total_flops()


OPTIMIZERS = ("adamw", "adamw_fused")  # the names make_optimizer takes


def make_optimizer(model, optimizer="adamw"):
    """'adamw': torch's default AdamW, what ``weaver --optimizer adamw`` builds (on CPU a loop over
    the parameters); 'adamw_fused': AdamW(fused=True), ``--optimizer adamw -p fused True`` in weaver."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}")
    return torch.optim.AdamW(model.parameters(), lr=1e-4, fused=optimizer == "adamw_fused")


def training_step(model, inputs, optimizer="adamw", device="cpu", autocast_dtype=None):
    """A function doing one training step on ``inputs``: zero_grad, forward, cross-entropy against
    alternating labels, backward, optimizer step (a fresh optimizer of kind ``optimizer``)."""
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

    return step


def train_throughput(model, inputs, repeats=5, optimizer="adamw", device="cpu", autocast_dtype=None):
    """Training events/s of ``training_step`` (median step)."""
    step = training_step(model, inputs, optimizer, device, autocast_dtype)
    return inputs[0].shape[0] / median_time(step, repeats, device=device)


def eager_inference_throughput(model, inputs, repeats=5, device="cpu"):
    """Inference events/s in eager PyTorch (``torch.inference_mode``, eval mode)."""
    model.eval().to(device)

    def run():
        with torch.inference_mode():
            model(*inputs)

    return inputs[0].shape[0] / median_time(run, repeats, device=device)


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
