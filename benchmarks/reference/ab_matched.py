"""A/B timing of a configuration's CPU training step (matched by default, or cross) across checkouts or settings.

Each variant is a checkout path, optionally followed by ':KEY=VALUE,KEY=VALUE' settings: a KEY in
upper case is an environment variable, one in lower case a network option (its VALUE a Python
literal, as weaver's ``-o``). Each variant runs in a fresh process in its checkout, with the
checkout first on PYTHONPATH, so that it imports that checkout's ``multiscale`` and ``benchmarks``.
The variants are interleaved over several rounds, so that a change of the machine's load hits all
of them alike; each process times 7 x 30 steps after 15 warm-up steps (fused AdamW, batch 50).
In the repository root:

    git worktree add /tmp/before <commit>
    python -m benchmarks.reference.ab_matched /tmp/before .            # two checkouts
    python -m benchmarks.reference.ab_matched . .:cpu_kernels=False    # one network option
    python -m benchmarks.reference.ab_matched --config cross /tmp/before . .:cpu_kernels=False
"""

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys

# runs inside each checkout; argv[1]: the network options as JSON, argv[2]: the configuration. A checkout from before the
# benchmarks moved out of the package has them in multiscale.benchmark
_CHILD = r"""
import json, sys, time, torch
try:
    from benchmarks.configs import build, inputs_for
except ImportError:
    from multiscale.benchmark import build, inputs_for
model, info = build(sys.argv[2], **json.loads(sys.argv[1]))
inputs = inputs_for(info, 50)
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


def parse_variant(variant):
    """'PATH[:KEY=VALUE,...]' -> (absolute checkout path, environment settings, network options)."""
    path, _, settings = variant.partition(":")
    env, options = {}, {}
    for item in filter(None, settings.split(",")):
        key, _, value = item.partition("=")
        if key.isupper():
            env[key] = value
        else:
            options[key] = ast.literal_eval(value)
    return os.path.abspath(path), env, options


def run_variant(variant, config):
    path, settings, options = parse_variant(variant)
    pythonpath = os.pathsep.join(filter(None, [path, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, **settings, PYTHONPATH=pythonpath)
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(options), config], cwd=path, capture_output=True,
                          text=True, env=env)
    if proc.returncode:
        sys.exit(f"ab_matched: variant {variant!r} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reference.ab_matched",
                                     description=__doc__.split("\n\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", help="PATH[:KEY=VALUE,...]")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default %(default)s)")
    parser.add_argument("--config", default="matched", help="benchmark configuration (default %(default)s; e.g. cross)")
    args = parser.parse_args()
    for variant in args.variants:
        parse_variant(variant)  # a malformed setting fails here, before any timing
    times = {v: [] for v in args.variants}
    for _ in range(args.rounds):
        for variant in args.variants:
            times[variant] += run_variant(variant, args.config)
    for variant, ts in times.items():
        print(f"{args.config:8s} {variant:40s} median {50 / statistics.median(ts):6.0f} ev/s   best {50 / min(ts):6.0f} ev/s")


if __name__ == "__main__":
    main()
