"""Benchmark the model configurations: parameters, FLOPs, training and inference throughput
(PyTorch eager and onnxruntime), peak memory, and the cost against the constituent count.

    python tools/benchmark.py --out docs/benchmark_cpu.json
    python tools/benchmark.py --quick --configs matched_model1      # seconds
    python tools/benchmark.py --weaver-data 'sig:/tmp/gen/hh4b_*.root' 'bkg:/tmp/gen/qcd_*.root'
"""

import argparse
import json
import os
import sys

import torch
from tabulate import tabulate
from tqdm import tqdm

from multiscale import benchmark as bench


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(bench.CONFIGS), choices=list(bench.CONFIGS))
    parser.add_argument("--out", default="benchmark.json", help="JSON file to write")
    parser.add_argument("--quick", action="store_true", help="tiny batches, no sweeps: a smoke test")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--weaver-data", nargs="+", default=None,
                        help="also time weaver's own training loop on these ROOT files (weaver's 'name:glob' syntax)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    train_batch, infer_batch, repeats = (8, 16, 1) if args.quick else (None, 256, 5)
    result = {"machine": bench.machine(), "configs": []}
    for name in tqdm(args.configs, desc="configs", file=sys.stderr):
        batch = train_batch or (50 if name == "matched_model1" else 128)
        result["configs"].append(bench.measure_config(name, batch, infer_batch, repeats))
    if not args.quick:
        result["token_sweep"] = bench.token_sweep()
        result["batch_sweep"] = bench.batch_sweep()
        if torch.cuda.is_available():
            result["gpu"] = bench.gpu_figures()
    if args.weaver_data:
        result["weaver"] = bench.weaver_throughput("data/jets_kin.yaml", args.weaver_data)
    result["machine"]["loadavg_at_end"] = os.getloadavg()

    print(tabulate(result["configs"], headers="keys", floatfmt=".4g"))
    for key in ("token_sweep", "batch_sweep"):
        if key in result:
            print(f"\n{key}\n" + tabulate(result[key], headers="keys", floatfmt=".4g"))
    for key in ("gpu", "weaver", "machine"):
        if key in result:
            print(f"\n{key}: {result[key]}")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
