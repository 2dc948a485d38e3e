#!/usr/bin/env python3
"""Benchmark the model configurations: parameters, FLOPs, training and inference throughput
(PyTorch eager and onnxruntime), peak memory, the cost against the constituent count and the batch
size, weaver's own training loop on ROOT files, and on a GPU bf16, torch.compile and MFU.

    python tools/benchmark.py --out docs/benchmark_cpu.json        # everything, < 5 min on 2 cores
    python tools/benchmark.py --quick --configs matched --out /tmp/b.json   # seconds
    python tools/benchmark.py --gpu --out docs/benchmark_gpu.json  # the GPU suite only (tools/benchmark_gpu.sh)

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
from multiscale.benchmark.onnx import onnx_figures  # noqa: E402
from multiscale.benchmark.timing import eager_inference_throughput  # noqa: E402

COLUMNS = [  # (key, header, format)
    ("config", "config", "s"), ("parameters", "params", "d"), ("forward_flops_per_event", "MFLOP/ev fwd", "M"),
    ("train_batch", "train b", "d"), ("train_events_per_s", "train ev/s AdamW", ".0f"),
    ("train_adamw_fused_events_per_s", "train ev/s fused", ".0f"), ("train_peak_rss_mb", "train MB (AdamW)", ".0f"),
    ("infer_batch", "infer b", "d"), ("eager_events_per_s", "eager ev/s", ".0f"),
    ("onnx_events_per_s", "onnx ev/s", ".0f"), ("onnx_max_abs_diff", "|torch-onnx|", ".1e"),
    ("eager_peak_rss_mb", "infer MB", ".0f"),
]


GPU_COLUMNS = [
    ("config", "config", "s"), ("batch", "batch", "d"), ("train_flops_per_event", "MFLOP/ev train", "M"),
    ("train_fp32_events_per_s", "fp32", ".0f"), ("train_bf16_events_per_s", "bf16", ".0f"),
    ("train_fp32_compiled_events_per_s", "fp32 compiled", ".0f"),
    ("train_bf16_compiled_events_per_s", "bf16 compiled", ".0f"),
    ("train_bf16_compiled_cudagraphs_events_per_s", "bf16 CUDA graphs", ".0f"),
    ("infer_fp32_events_per_s", "infer fp32", ".0f"), ("infer_bf16_events_per_s", "infer bf16", ".0f"),
    ("train_bf16_peak_memory_mb", "train bf16 MB", ".0f"), ("train_fp32_peak_memory_mb", "train fp32 MB", ".0f"),
    ("infer_bf16_peak_memory_mb", "infer bf16 MB", ".0f"), ("mfu", "MFU", ".2%"),
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
    gpu_args.add_argument("--weaver-variants", nargs="+", type=int, default=[0, 1, 2, 3],
                          help="which of WEAVER_GPU_VARIANTS to run (indices; default all)")
    gpu_args.add_argument("--no-attention-backends", action="store_true",
                          help="skip the training figures with each SDPA backend forced")
    gpu_args.add_argument("--weaver-budget", type=float, default=120,
                          help="seconds for the weaver runs; later variants are skipped (default %(default)s)")
    gpu_args.add_argument("--onnx-batch", type=int, default=256, help="batch of the onnxruntime figure")
    return parser.parse_args(argv)


# weaver's loop on the GPU: (data loading options, what they are); cross at the GPU batch, bf16 autocast
WEAVER_GPU_VARIANTS = (
    ({"in_memory": True, "num_workers": 0, "fetch_step": 1}, "--in-memory, loading in the main process"),
    ({"in_memory": False, "num_workers": 0, "fetch_step": 0.1}, "files read during training, main process"),
    ({"in_memory": False, "num_workers": 4, "fetch_step": 1}, "files read during training, 4 workers"),
    ({"in_memory": True, "num_workers": 4, "fetch_step": 1}, "--in-memory, 4 workers"),
)


def run_gpu(args, result):
    """The GPU suite: model figures, profiles, weaver's loop on the GPU, onnxruntime on the CPU cores.
    The JSON is written after each part, so a run stopped by a time limit keeps what it measured."""
    device = args.device

    def save():
        write_json(Path(args.out), {**result, "partial": True})

    result["gpu"] = gpu.gpu_figures(args.gpu_configs, args.gpu_batches, args.gpu_repeats, device,
                                    compile=not args.no_compile, compile_budget_s=args.compile_budget, log=log,
                                    compile_precisions=args.compile_precisions, cudagraphs=args.cudagraphs)
    if result["gpu"] is None:
        raise SystemExit("--gpu: no CUDA device (use --device cpu for a dry run)")
    save()
    batch = args.gpu_batches[0]
    result["gpu_profile"] = []
    for compiled in (False, True)[: 0 if args.no_profile else 1 if args.no_compile else 2]:
        try:
            result["gpu_profile"].append(gpu.profile_training(args.gpu_configs[0], batch, device, "bf16",
                                                              compiled=compiled))
            p = result["gpu_profile"][-1]
            log(f"profile ({'compiled' if compiled else 'eager'}): {p['wall_ms_per_step']:.2f} ms/step, "
                f"GPU kernels {p['gpu_kernel_ms_per_step']:.2f} ms")
        except Exception as err:  # a profile is a bonus: keep the figures
            result["gpu_profile"].append({"compiled": compiled, "error": f"{type(err).__name__}: {err}"[:500]})
        save()
    if not args.no_attention_backends:
        result["gpu_attention_backends"] = gpu.attention_backends(args.gpu_configs[0], args.gpu_batches, device,
                                                                  repeats=args.gpu_repeats)
        log(f"attention backends: {result['gpu_attention_backends']}")
    save()
    if not args.no_weaver:
        result["weaver_gpu"] = []
        with tempfile.TemporaryDirectory() as tmp:
            data = args.weaver_data or default_weaver_data(tmp)
            start = time.perf_counter()
            for options, what in [WEAVER_GPU_VARIANTS[i] for i in args.weaver_variants]:
                if time.perf_counter() - start > args.weaver_budget:
                    result["weaver_gpu"].append({**options, "what": what, "skipped": "weaver budget spent"})
                    continue
                try:
                    w = weaver_loop.weaver_throughput(
                        data, data_config="data/jets_kin.yaml", batch=batch, steps=args.weaver_steps, epochs=2,
                        options={"fusion": "cross"}, gpus="0" if device == "cuda" else "",
                        extra_args=("--use-amp", "--amp-dtype", "bf16") if device == "cuda" else (),
                        timed=True, **options)
                    w["what"] = what
                except Exception as err:
                    w = {**options, "what": what, "error": f"{type(err).__name__}: {err}"[-1500:]}
                result["weaver_gpu"].append(w)
                log(f"weaver ({what}): {w.get('epochs', w.get('error'))}")
                save()
    model, info = configs.build(args.gpu_configs[0], for_inference=True)
    inputs = configs.inputs_for(info, args.onnx_batch)
    result["onnx_cpu"] = {"config": args.gpu_configs[0], "batch": args.onnx_batch, "threads": torch.get_num_threads(),
                          "cores": os.cpu_count(), **onnx_figures(model, info, inputs, args.repeats)}
    result["onnx_cpu"]["torch_eager_cpu_events_per_s"] = eager_inference_throughput(model.cpu(), inputs, args.repeats)
    log(f"onnxruntime on the CPU: {result['onnx_cpu']['onnx_events_per_s']:.0f} ev/s")
    return _finish(result)


def run(args, argv):
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"machine": suite.machine(), "command": shlex.join(["tools/benchmark.py", *argv])}
    if args.gpu:
        return run_gpu(args, result)
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
        result["gpu"] = gpu.gpu_figures(args.gpu_configs, args.gpu_batches, args.gpu_repeats,
                                        compile=not args.no_compile, compile_budget_s=args.compile_budget, log=log,
                                        compile_precisions=args.compile_precisions, cudagraphs=args.cudagraphs)
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
        print(f"\ngpu ({result['gpu']['device']})\n{table(result['gpu']['configs'], GPU_COLUMNS)}")
        for key in ("compile_error", "compile_skipped"):
            for row in result["gpu"]["configs"]:
                if key in row:
                    print(f"  {row['config']} {row['batch']}: {key} {row[key]}")
    for p in result.get("gpu_profile", []):
        if "error" in p:
            print(f"\nprofile (compiled={p['compiled']}) failed: {p['error']}")
            continue
        print(f"\nprofile {p['config']} batch {p['batch']} {p['precision']} compiled={p['compiled']}: "
              f"{p['wall_ms_per_step']:.2f} ms/step wall, {p['gpu_kernel_ms_per_step']:.2f} ms of kernels "
              f"({p['kernels_per_step']:.0f} kernels/step)")
        print("  by category (ms/step): " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                     p["kernel_ms_per_step_by_category"].items()))
        if p["forward_ms_per_step_by_part"]:
            print("  forward by part (ms/step): " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                            p["forward_ms_per_step_by_part"].items()))
        for k in p["top_kernels"][:8]:
            print(f"    {k['ms_per_step']:7.3f} ms  {k['category'][:12]:12s} {k['kernel'][:90]}")
    if result.get("gpu_attention_backends"):
        print(f"\nattention implementation forced (eager bf16 training events/s)\n{table(result['gpu_attention_backends'])}")
    for w in result.get("weaver_gpu", []):
        print(f"\nweaver on the GPU, {w['what']}: " + (str(w.get("error") or w.get("skipped")) if "epochs" not in w else
              "; ".join(f"epoch {i + 1} {e['events_per_s']:.0f} ev/s, waits for data "
                        f"{100 * (e.get('data_wait', {}).get('wait_fraction') or 0):.0f}% "
                        f"(first batch {e.get('data_wait', {}).get('first_wait_s') or 0:.2f} s)"
                        for i, e in enumerate(w["epochs"]))))
    if "onnx_cpu" in result:
        o = result["onnx_cpu"]
        print(f"\nonnxruntime on the CPU ({o['threads']} threads), {o['config']} batch {o['batch']}: "
              f"{o['onnx_events_per_s']:.0f} ev/s (torch eager on the CPU {o['torch_eager_cpu_events_per_s']:.0f}), "
              f"max |diff| {o['onnx_max_abs_diff']:.1e}")
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
    write_json(out, result)
    print(f"wrote {out}")
    return 0


def write_json(out, result):
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(out)  # never a half-written file


if __name__ == "__main__":
    sys.exit(main())
