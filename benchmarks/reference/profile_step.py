"""Where the time of one CPU training step of a configuration goes: wall time of every ATen
kernel (a TorchDispatchMode timer below autograd), summed per operator over 50 steps.

    python -m benchmarks.reference.profile_step [--config matched] [--batch 50] [--top 25]   # in the repository root

The timer adds its own Python overhead per call, so the instrumented step is slower than a plain
one; both are printed. Kernel times include the waits of their parallel regions.
"""

import argparse
import time
from collections import Counter, defaultdict

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .. import configs
from ..timing import training_step


class KernelTimer(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.seconds, self.calls = defaultdict(float), Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        start = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        self.seconds[func.__name__] += time.perf_counter() - start
        self.calls[func.__name__] += 1
        return out


def main():
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reference.profile_step",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="matched", choices=list(configs.CONFIGS))
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    model, info = configs.build(args.config)
    step = training_step(model, configs.inputs_for(info, args.batch), "adamw_fused")
    for _ in range(20):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    plain = (time.perf_counter() - start) / args.steps
    timer = KernelTimer()
    with timer:
        for _ in range(10):
            step()
        timer.seconds.clear()
        timer.calls.clear()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        instrumented = (time.perf_counter() - start) / args.steps
    total = sum(timer.seconds.values()) / args.steps
    print(f"{args.config}, batch {args.batch}, {torch.get_num_threads()} threads: plain step {plain * 1e3:.2f} ms, "
          f"instrumented {instrumented * 1e3:.2f} ms, kernel time {total * 1e3:.2f} ms per step")
    for name, seconds in sorted(timer.seconds.items(), key=lambda kv: -kv[1])[: args.top]:
        calls = timer.calls[name] / args.steps
        print(f"  {name:40s} {seconds / args.steps * 1e3:7.3f} ms  {calls:5.0f} calls  "
              f"{seconds / timer.calls[name] * 1e6:7.1f} us/call")


if __name__ == "__main__":
    main()
