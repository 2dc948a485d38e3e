#!/usr/bin/env python3
"""Benchmark the model configurations: parameters, FLOPs, training and inference throughput
(PyTorch eager and onnxruntime), peak memory, the cost against the constituent count and the batch
size, weaver's own training loop on ROOT files, and on a GPU bf16, torch.compile and MFU.

    python tools/benchmark.py --out docs/benchmark_cpu.json        # everything, < 5 min on 2 cores
    python tools/benchmark.py --quick --configs matched --out /tmp/b.json   # seconds

Figures are medians of repeated timed calls after warm-up; the machine load (loadavg) is recorded
beside each part, since other processes on the machine change the figures. The weaver loop reads
--weaver-data, else $DATADIR_hh4b/train (the demo's sample), else a 300 + 300 event sample that it
generates first (~30 s). See docs/performance.md.
"""

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from multiscale.benchmark import configs, gpu, suite, weaver_loop  # noqa: E402
from multiscale.benchmark.configs import MATCHED_BATCH  # noqa: E402

COLUMNS = [  # (key, header, format)
    ("config", "config", "s"), ("parameters", "params", "d"), ("forward_flops_per_event", "MFLOP/ev fwd", "M"),
    ("train_batch", "train b", "d"), ("train_events_per_s", "train ev/s AdamW", ".0f"),
    ("train_adamw_fused_events_per_s", "train ev/s fused", ".0f"), ("train_peak_rss_mb", "train MB (AdamW)", ".0f"),
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


def _cells(rows, columns):
    """Header row and formatted rows; a column is (key, or function of the row; header; format)."""
    return [[h for _, h, _ in columns]] + [[_fmt(k(r) if callable(k) else r.get(k), f) for k, _, f in columns]
                                           for r in rows]


def _kernels(counts):
    """{"sdpa": 3, "bmm": 2} -> 'bmm 2, sdpa 3'."""
    return ", ".join(f"{kernel} {n}" for kernel, n in sorted(counts.items()))


def table(rows, columns=None):
    """Plain-text table of ``rows`` (dicts); ``columns`` as in COLUMNS, default: every scalar key."""
    if not rows:
        return ""
    columns = columns or [(k, k, ".4g" if isinstance(v, float) else ("d" if isinstance(v, int) else "s"))
                          for k, v in rows[0].items() if not isinstance(v, (dict, list, tuple))]
    columns = [c for c in columns if any(c[0] in r for r in rows)]
    cells = _cells(rows, columns)
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def default_weaver_data(tmp):
    """$DATADIR_hh4b/train when it holds hh4b and QCD files, else a freshly generated sample."""
    train = Path(os.environ.get("DATADIR_hh4b", configs.REPO_ROOT / "datasets" / "hh4b")) / "train"
    if list(train.glob("hh4b_*.root")) and list(train.glob("qcd_*.root")):
        return [f"sig:{train}/hh4b_*.root", f"bkg:{train}/qcd_*.root"]
    log(f"no sample in {train}: generating 300 hh4b + 300 QCD events")
    return weaver_loop.generate_sample(tmp)


_START = time.perf_counter()


def log(message):
    print(f"[{time.perf_counter() - _START:5.0f}s] {message}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
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
    return parser.parse_args(argv)


def run(args, argv):
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"machine": suite.machine(), "command": shlex.join(["tools/benchmark.py", *argv])}
    sizes = {"matched": (MATCHED_BATCH, configs.INFER_BATCH)}
    default_sizes = (configs.TRAIN_BATCH, configs.INFER_BATCH)
    repeats = args.repeats
    if args.quick:
        sizes, default_sizes, repeats = {}, (8, 8), 1

    if "matched" in args.configs or args.matched_only:
        result["matched_training"] = suite.matched_training(1 if args.quick else args.rounds, 2 if args.quick else 30,
                                                            compiled=args.compile)
        m = result["matched_training"]
        log(f"matched training, batch {MATCHED_BATCH}: AdamW {m['adamw']['median']:.0f} ev/s, "
            f"fused AdamW {m['adamw_fused']['median']:.0f} ev/s (median of {m['rounds']} rounds, loadavg {m['loadavg']})")
    if args.matched_only:
        return _finish(result)
    result["configs"] = []
    for name in args.configs:
        train_batch, infer_batch = sizes.get(name, default_sizes)
        load = os.getloadavg()[0]
        row = suite.measure_config(name, train_batch, infer_batch, repeats)
        row["loadavg"] = [round(load, 2), round(os.getloadavg()[0], 2)]
        result["configs"].append(row)
        log(f"{name}: train {row['train_adamw_fused_events_per_s']:.0f} ev/s, eager {row['eager_events_per_s']:.0f} "
            f"ev/s, onnx {row['onnx_events_per_s']:.0f} ev/s (loadavg {row['loadavg']})")
    if not (args.quick or args.no_sweeps):
        load = os.getloadavg()[0]
        result["token_sweep"] = suite.token_sweep()
        log("token sweep done")
        result["batch_sweep"] = suite.batch_sweep()
        result["sweeps_loadavg"] = [round(load, 2), round(os.getloadavg()[0], 2)]
        log("batch sweep done")
    if torch.cuda.is_available() and not args.quick:
        result["gpu"] = gpu.gpu_figures()
        log("GPU figures done")
    if not (args.quick or args.no_weaver):
        with tempfile.TemporaryDirectory() as tmp:
            data = args.weaver_data or default_weaver_data(tmp)
            log(f"weaver loop on {data}")
            result["weaver"] = weaver_loop.weaver_throughput(data, steps=args.weaver_steps)
        result["weaver"]["pure_model_fused_events_per_s"] = weaver_loop.pure_model_events_per_s()
        log(f"weaver loop: {result['weaver']['epochs']}")
    return _finish(result)


def _finish(result):
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    result["seconds"] = time.perf_counter() - _START
    return result


def _md(rows, columns):
    """Markdown table of ``rows``; columns as for ``_cells``."""
    header, *body = _cells(rows, columns)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def markdown_tables(result):
    """The tables of docs/performance.md, from a JSON written by this tool."""
    out = []
    if "configs" in result:
        out.append(_md(result["configs"], [
            ("config", "config", "s"), (lambda r: r["parameters"] / 1e3, "parameters (k)", ".0f"),
            ("forward_flops_per_event", "MFLOP/event (forward)", "M"),
            ("train_events_per_s", "train ev/s AdamW", ".0f"), ("train_adamw_fused_events_per_s", "train ev/s fused", ".0f"),
            (lambda r: _kernels(r["train_attention_kernels"]), "attention layers in training", "s"),
            ("train_peak_rss_mb", "train peak MB", ".0f"), ("eager_events_per_s", "eager ev/s", ".0f"),
            ("onnx_events_per_s", "onnxruntime ev/s", ".0f"), ("onnx_max_abs_diff", "max \\|Δ\\|", ".1e"),
            ("eager_peak_rss_mb", "inference peak MB", ".0f")]))
    if "token_sweep" in result:
        out.append(_md(result["token_sweep"], [
            ("pf_tokens", "constituents", "d"), ("forward_flops_per_event", "MFLOP/event", "M"),
            ("train_bmm_events_per_s", "train, bmm kernel", ".0f"), ("train_sdpa_events_per_s", "train, SDPA", ".0f"),
            ("train_auto_events_per_s", "train, auto", ".0f"),
            (lambda r: _kernels(r["auto_kernels"]), "auto's choice", "s"),
            ("eager_events_per_s", "eager inference", ".0f")]))
    if "batch_sweep" in result:
        out.append(_md(result["batch_sweep"], [("batch", "batch", "d"), ("train_events_per_s", "train ev/s fused", ".0f"),
                                               ("eager_events_per_s", "eager ev/s", ".0f")]))
    return "\n\n".join(out)


def report(result):
    if "matched_training" in result:
        m = result["matched_training"]
        print(f"matched configuration (50 x 7 tokens, 5 heads, 3 layers, batch {m['batch']}), training events/s "
              f"over {m['rounds']} rounds of {m['steps_per_round']} steps, loadavg {m['loadavg']}:")
        for variant in (*suite.OPTIMIZERS, "adamw_fused_compiled"):
            if variant in m:
                r = m[variant]
                print(f"  {variant:20s} median {r['median']:6.0f}   min {r['min']:6.0f}   max {r['max']:6.0f}")
        if "compile_seconds" in m:
            print(f"  (torch.compile took {m['compile_seconds']:.0f} s)")
    if "configs" in result:
        print("\n" + table(result["configs"], COLUMNS))
        print("\nonnxruntime graph after ORT_ENABLE_ALL (nodes exported -> optimised; fused operators):")
        for row in result["configs"]:
            print(f"  {row['config']}: {row['onnx_nodes_exported']} -> {row['onnx_nodes_optimized']} "
                  f"{row['onnx_fused_ops']}")
    for key in ("token_sweep", "batch_sweep"):
        if key in result:
            print(f"\n{key}\n{table(result[key])}")
    if result.get("gpu"):
        print(f"\ngpu ({result['gpu']['device']})\n{table(result['gpu']['configs'])}")
    if "weaver" in result:
        w = result["weaver"]
        print(f"\nweaver loop (matched model from data/jets.yaml, batch {w['batch']}, {w['steps_per_epoch']} "
              f"steps/epoch, fused AdamW): per epoch {w['epochs']}; the same model on synthetic inputs "
              f"{w['pure_model_fused_events_per_s']:.0f} ev/s; wall {w['wall_s']:.0f} s")
    print(f"\nmachine: {result['machine']}\n{result['seconds']:.0f} s")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.tables:
        print(markdown_tables(json.loads(Path(args.tables).read_text())))
        return 0
    result = run(args, argv)
    report(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(out)  # never a half-written file
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
