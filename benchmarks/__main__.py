"""Benchmark the model configurations: parameters, FLOPs, training and inference throughput
(PyTorch eager and onnxruntime), peak memory, the cost against the constituent count and the batch
size, weaver's own training loop on ROOT files, and on a GPU bf16, torch.compile and MFU.
In the repository root:

    python -m benchmarks --out docs/benchmark_cpu.json        # everything, < 5 min on 2 cores
    python -m benchmarks --quick --configs matched --out /tmp/b.json   # seconds
    python -m benchmarks --gpu --out docs/benchmark_gpu.json  # the GPU suite only (benchmarks/benchmark_gpu.sh)
    python -m benchmarks --tables docs/benchmark_cpu.json     # the markdown tables of docs/performance.md

Figures are medians of repeated timed calls after warm-up; the machine load (loadavg) is recorded
beside each part, since other processes on the machine change the figures. The weaver loop reads
--weaver-data, else $DATADIR_hh4b/train (the demo's sample), else a 300 + 300 event sample that it
generates first (~30 s). See docs/performance.md.
"""

import argparse
import json
import sys
from pathlib import Path

from . import configs, report, suite


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add = parser.add_argument
    add("--configs", nargs="+", default=list(configs.CONFIGS), choices=list(configs.CONFIGS))
    add("--out", default="benchmark.json", help="JSON file to write (default: %(default)s)")
    add("--quick", action="store_true", help="tiny batches, one repeat, no sweeps, no weaver: a smoke test")
    add("--repeats", type=int, default=7, help="timed calls per figure (median; default %(default)s)")
    add("--rounds", type=int, default=7, help="rounds of the matched training figure (default %(default)s)")
    add("--matched-only", action="store_true", help="only the matched configuration's training figure (rounds)")
    add("--compile", action="store_true", help="matched training also with torch.compile (compiles for ~10 s)")
    add("--tables", metavar="JSON", help="print the markdown tables of docs/performance.md from a saved JSON and exit")
    add("--threads", type=int, default=None, help="torch and onnxruntime threads (default: torch's choice)")
    add("--no-sweeps", action="store_true", help="skip the token-count and batch-size sweeps")
    add("--no-weaver", action="store_true", help="skip the weaver training loop")
    add("--weaver-data", nargs="+", default=None, metavar="NAME:GLOB",
        help="ROOT files for the weaver loop, weaver's --data-train syntax (default: see above)")
    add("--weaver-steps", type=int, default=60, help="steps per weaver epoch (default %(default)s)")
    gpu_args = parser.add_argument_group("GPU suite (--gpu)")
    gpu_args.add_argument("--gpu", action="store_true",
                          help="only the GPU suite: fp32/bf16 training with and without torch.compile, inference, "
                               "memory, MFU, a profile, weaver's loop on the GPU, onnxruntime on the CPU cores")
    gpu_args.add_argument("--device", default="cuda", help="device of the GPU suite (cpu: a dry run; default cuda)")
    gpu_args.add_argument("--gpu-configs", nargs="+", default=["cross", "cross_pair"])
    gpu_args.add_argument("--gpu-batches", nargs="+", type=int, default=[512, 1024])
    gpu_args.add_argument("--gpu-repeats", type=int, default=10, help="timed steps per GPU figure (median)")
    gpu_args.add_argument("--compile-budget", type=float, default=150,
                          help="seconds for the torch.compile figures; the rest are skipped (default %(default)s)")
    gpu_args.add_argument("--no-compile", action="store_true", help="no torch.compile figures")
    gpu_args.add_argument("--no-profile", action="store_true", help="skip the profiles")
    gpu_args.add_argument("--compile-precisions", nargs="*", default=["bf16", "fp32"], choices=["bf16", "fp32"],
                          help="precisions of the torch.compile figures, in this order (default: %(default)s)")
    gpu_args.add_argument("--cudagraphs", action="store_true",
                          help="also bf16 torch.compile mode='reduce-overhead' (CUDA graphs), first configuration")
    gpu_args.add_argument("--weaver-variants", nargs="+", type=int, default=[0, 4, 1, 2, 3],
                          help="which of WEAVER_GPU_VARIANTS to run (indices; default all, the per-event one second)")
    gpu_args.add_argument("--no-attention-backends", action="store_true",
                          help="skip the training figures with each SDPA backend forced")
    gpu_args.add_argument("--weaver-budget", type=float, default=120,
                          help="seconds for the weaver runs; later variants are skipped (default %(default)s)")
    gpu_args.add_argument("--onnx-batch", type=int, default=256, help="batch of the onnxruntime figure")
    return parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.tables:
        print(report.markdown_tables(json.loads(Path(args.tables).read_text())))
        return 0
    result = suite.run(args, argv)
    report.report(result)
    out = Path(args.out)
    report.write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
