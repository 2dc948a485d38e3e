"""Benchmark the model configurations: parameters, FLOPs, training and inference throughput
(PyTorch eager and onnxruntime), peak memory, the cost against the constituent count and the batch
size, and optionally weaver's own training loop on ROOT files.

    python tools/benchmark.py --out docs/benchmark_cpu.json            # all configurations, < 5 min
    python tools/benchmark.py --quick --configs matched --out /tmp/b.json   # seconds
    python tools/benchmark.py --only-weaver --weaver-data 'sig:/tmp/bench_gen/hh4b_*.root' \\
        'bkg:/tmp/bench_gen/qcd_*.root' --out docs/benchmark_weaver.json

Figures are medians of repeated timed calls after warm-up; the machine load (loadavg) is recorded
before and after each part, since other processes on the machine change the figures.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from multiscale import benchmark as bench  # noqa: E402

COLUMNS = [  # (key, header, format)
    ("config", "config", "s"), ("parameters", "params", "d"), ("forward_flops_per_event", "MFLOP/ev fwd", "M"),
    ("train_batch", "train b", "d"), ("train_events_per_s", "train ev/s", ".0f"),
    ("train_adamw_fused_events_per_s", "train ev/s fusedAdamW", ".0f"), ("train_peak_rss_mb", "train MB", ".0f"),
    ("infer_batch", "infer b", "d"), ("eager_events_per_s", "eager ev/s", ".0f"),
    ("onnx_events_per_s", "onnx ev/s", ".0f"), ("onnx_max_abs_diff", "|torch-onnx|", ".1e"),
    ("eager_peak_rss_mb", "infer MB", ".0f"),
]


def _fmt(value, fmt):
    if value is None:
        return "-"
    if fmt == "M":
        return f"{value / 1e6:.1f}"
    return format(value, fmt)


def table(rows, columns=None):
    if not rows:
        return ""
    columns = columns or [(k, k, ".4g" if isinstance(v, float) else ("d" if isinstance(v, int) else "s"))
                          for k, v in rows[0].items() if not isinstance(v, (dict, list, tuple))]
    columns = [c for c in columns if any(c[0] in r for r in rows)]
    cells = [[h for _, h, _ in columns]] + [[_fmt(r.get(k), f) for k, _, f in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--configs", nargs="+", default=list(bench.CONFIGS), choices=list(bench.CONFIGS))
    parser.add_argument("--out", default="benchmark.json", help="JSON file to write (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="tiny batches, one repeat, no sweeps: a smoke test")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure (median; default 5)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and onnxruntime threads (default: torch's choice, the physical cores)")
    parser.add_argument("--no-sweeps", action="store_true", help="skip the token-count and batch-size sweeps")
    parser.add_argument("--weaver-data", nargs="+", default=None, metavar="NAME:GLOB",
                        help="also time weaver's training loop on these ROOT files (weaver's --data-train syntax)")
    parser.add_argument("--weaver-steps", type=int, default=60, help="steps per weaver epoch (default 60)")
    parser.add_argument("--only-weaver", action="store_true", help="only the weaver measurement")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    result = {"machine": bench.machine(), "commands": " ".join(sys.argv)}
    result["machine"]["rss_method"] = "VmHWM after clear_refs (see multiscale.benchmark.peak_rss)"
    if args.quick:
        repeats, sizes = 1, {"matched": (8, 8)}
    else:
        repeats, sizes = args.repeats, {"matched": (bench.MATCHED_BATCH, bench.INFER_BATCH)}
    default_sizes = (8, 8) if args.quick else (bench.TRAIN_BATCH, bench.INFER_BATCH)

    if not args.only_weaver:
        result["configs"] = []
        for name in args.configs:
            train_batch, infer_batch = sizes.get(name, default_sizes)
            load = os.getloadavg()
            row = bench.measure_config(name, train_batch, infer_batch, repeats)
            row["loadavg"] = [round(load[0], 2), round(os.getloadavg()[0], 2)]
            result["configs"].append(row)
            print(f"[{time.perf_counter() - start:5.0f}s] {name}: train {row['train_events_per_s']:.0f} ev/s, "
                  f"eager {row['eager_events_per_s']:.0f} ev/s, onnx {row['onnx_events_per_s']:.0f} ev/s "
                  f"(loadavg {row['loadavg']})", file=sys.stderr)
        if not (args.quick or args.no_sweeps):
            load = os.getloadavg()
            result["token_sweep"] = bench.token_sweep()
            result["batch_sweep"] = bench.batch_sweep()
            result["sweeps_loadavg"] = [round(load[0], 2), round(os.getloadavg()[0], 2)]
            print(f"[{time.perf_counter() - start:5.0f}s] sweeps done", file=sys.stderr)
        if torch.cuda.is_available() and not args.quick:
            result["gpu"] = bench.gpu_figures()
    if args.weaver_data:
        result["weaver"] = bench.weaver_throughput(args.weaver_data, steps=args.weaver_steps, threads=args.threads)
        result["weaver"]["pure_model_events_per_s"] = bench.pure_model_reference("cross", 50)
        result["weaver"]["pure_model_note"] = "cross (data/jets_kin.yaml), batch 50, default AdamW, synthetic inputs"
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    result["seconds"] = time.perf_counter() - start

    if "configs" in result:
        print(table(result["configs"], COLUMNS))
        print("\nonnxruntime graph after ORT_ENABLE_ALL (nodes exported -> optimised; fused operators):")
        for row in result["configs"]:
            print(f"  {row['config']}: {row['onnx_nodes_exported']} -> {row['onnx_nodes_optimized']} "
                  f"{row['onnx_fused_ops']}")
    for key in ("token_sweep", "batch_sweep"):
        if key in result:
            print(f"\n{key}\n{table(result[key])}")
    if "gpu" in result and result["gpu"]:
        print(f"\ngpu ({result['gpu']['device']})\n{table(result['gpu']['configs'])}")
    if "weaver" in result:
        w = result["weaver"]
        print(f"\nweaver (batch {w['batch']}, {w['steps_per_epoch']} steps/epoch): per epoch {w['epochs']}; "
              f"pure model {w['pure_model_events_per_s']:.0f} ev/s; wall {w['wall_s']:.0f} s")
    print(f"\nmachine: {result['machine']}\n{result['seconds']:.0f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
