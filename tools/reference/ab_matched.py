#!/usr/bin/env python3
"""A/B timing of the matched configuration's CPU training step across checkouts or settings.

Each variant is a checkout path, optionally followed by ':VAR=VALUE,VAR=VALUE' environment
settings. The variants run in fresh processes, interleaved over several rounds, so that a change
of the machine's load hits all of them alike; each process times 7 x 30 steps after 15 warm-up
steps (fused AdamW, batch 50).

    git worktree add /tmp/before <commit>
    python tools/reference/ab_matched.py /tmp/before .                  # two checkouts
    python tools/reference/ab_matched.py . .:MULTISCALE_MALLOC_TUNING=0  # one setting
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

# run inside each checkout; only APIs that every version of multiscale.benchmark has
_CHILD = r"""
import json, sys, time, torch
sys.path.insert(0, sys.argv[1])
from multiscale import benchmark as bench
model, info = bench.build("matched")
inputs = bench.inputs_for(info, 50)
labels = (torch.arange(50) % 2).long()
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
def step():
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(*inputs), labels).backward()
    opt.step()
for _ in range(15):
    step()
times = []
for _ in range(7):
    start = time.perf_counter()
    for _ in range(30):
        step()
    times.append((time.perf_counter() - start) / 30)
print(json.dumps(times))
"""


def run_variant(variant):
    path, _, settings = variant.partition(":")
    env = dict(os.environ, **dict(item.split("=", 1) for item in settings.split(",") if item))
    proc = subprocess.run([sys.executable, "-c", _CHILD, os.path.abspath(path)], capture_output=True, text=True,
                          env=env)
    if proc.returncode:
        sys.exit(f"ab_matched.py: variant {variant!r} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", help="PATH[:VAR=VALUE,...]")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default %(default)s)")
    args = parser.parse_args()
    times = {v: [] for v in args.variants}
    for _ in range(args.rounds):
        for variant in args.variants:
            times[variant] += run_variant(variant)
    for variant, ts in times.items():
        print(f"{variant:40s} median {50 / statistics.median(ts):6.0f} ev/s   best {50 / min(ts):6.0f} ev/s")


if __name__ == "__main__":
    main()
