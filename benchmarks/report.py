"""What ``python -m benchmarks`` prints and saves: plain-text tables of a run, the markdown tables
of docs/performance.md from a saved JSON (``--tables``), the JSON itself, and the timed log lines."""

import json
import sys
import time

from .timing import OPTIMIZERS

_START = time.perf_counter()


def elapsed():
    """Seconds since the benchmark started (this module's import)."""
    return time.perf_counter() - _START


def log(message):
    print(f"[{elapsed():5.0f}s] {message}", file=sys.stderr, flush=True)


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


def _md(rows, columns):
    """Markdown table of ``rows``; columns as for ``_cells``."""
    header, *body = _cells(rows, columns)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _either(*keys):
    """The first of ``keys`` that a row has: JSONs written before the network option ``cpu_kernels``
    hold its 'on' and 'off' figures of the token sweep as 'auto' and 'sdpa'."""
    return lambda row: next((row[k] for k in keys if k in row), None)


def markdown_tables(result):
    """The tables of docs/performance.md, from a JSON written by ``python -m benchmarks``."""
    out = []
    if "configs" in result:
        out.append(_md(result["configs"], [
            ("config", "config", "s"), (lambda r: r["parameters"] / 1e3, "parameters (k)", ".0f"),
            ("forward_flops_per_event", "MFLOP/event (forward)", "M"),
            ("train_events_per_s", "train ev/s AdamW", ".0f"), ("train_adamw_fused_events_per_s", "train ev/s fused", ".0f"),
            ("train_peak_rss_mb", "train peak MB", ".0f"), ("eager_events_per_s", "eager ev/s", ".0f"),
            ("onnx_events_per_s", "onnxruntime ev/s", ".0f"), ("onnx_max_abs_diff", "max \\|Δ\\|", ".1e"),
            ("eager_peak_rss_mb", "inference peak MB", ".0f")]))
    if "token_sweep" in result:
        out.append(_md(result["token_sweep"], [
            ("pf_tokens", "constituents", "d"), ("forward_flops_per_event", "MFLOP/event", "M"),
            (_either("train_cpu_kernels_on_events_per_s", "train_auto_events_per_s"), "train, cpu_kernels on", ".0f"),
            (_either("train_cpu_kernels_off_events_per_s", "train_sdpa_events_per_s"), "train, cpu_kernels off",
             ".0f"),
            ("eager_events_per_s", "eager inference", ".0f")]))
    if "batch_sweep" in result:
        out.append(_md(result["batch_sweep"], [("batch", "batch", "d"), ("train_events_per_s", "train ev/s fused", ".0f"),
                                               ("eager_events_per_s", "eager ev/s", ".0f")]))
    return "\n\n".join(out)


def report(result):
    """Print the figures of a run (the dict that ``suite.run`` returns)."""
    if "matched_training" in result:
        m = result["matched_training"]
        print(f"matched configuration (50 x 7 tokens, 5 heads, 3 layers, batch {m['batch']}), training events/s "
              f"over {m['rounds']} rounds of {m['steps_per_round']} steps, loadavg {m['loadavg']}:")
        for variant in (*OPTIMIZERS, "adamw_fused_compiled"):
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


def write_json(out, result):
    """Write ``result`` to the path ``out`` (a Path) in one step: never a half-written file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(out)  # never a half-written file
