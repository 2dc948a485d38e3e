"""What ``python -m benchmarks`` measures: one row per configuration, the matched configuration's
training figure in rounds, the sweeps over token count and batch size, weaver's loop (``run``);
and the GPU suite (``run_gpu``)."""

import os
import platform
import shlex
import statistics
import tempfile
import time
from pathlib import Path

import torch

from . import REPO_ROOT, configs, gpu, weaver_loop
from .configs import MATCHED_BATCH, build, inputs_for
from .onnx import onnx_figures
from .report import elapsed, log, write_json
from .timing import OPTIMIZERS, eager_inference_throughput, forward_flops, peak_rss, train_throughput


def _train_key(optimizer):
    return "train_events_per_s" if optimizer == "adamw" else f"train_{optimizer}_events_per_s"


def measure_config(name, train_batch, infer_batch, repeats):
    """Parameters, FLOPs, training events/s (both optimizers), eager and onnxruntime inference
    events/s, peak memory of training and inference."""
    model, info = build(name)
    train_inputs = inputs_for(info, train_batch)
    infer_inputs = inputs_for(info, infer_batch)
    flops = forward_flops(model, infer_inputs) / infer_batch
    row = {
        "config": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "forward_flops_per_event": flops,
        "train_flops_per_event": 3 * flops,  # forward + backward (~2x forward)
        "train_batch": train_batch,
    }
    for optimizer in OPTIMIZERS:
        with peak_rss() as mem:
            row[_train_key(optimizer)] = train_throughput(model, train_inputs, repeats, optimizer)
        row.setdefault("train_peak_rss_mb", mem["mb"])  # with torch's default AdamW
    row["infer_batch"] = infer_batch
    with peak_rss() as mem:
        row["eager_events_per_s"] = eager_inference_throughput(model, infer_inputs, repeats)
    row["eager_peak_rss_mb"] = mem["mb"]
    row["rss_method"] = mem["method"]
    inference_model, info = build(name, for_inference=True)
    inference_model.load_state_dict(model.state_dict())
    row.update(onnx_figures(inference_model, info, infer_inputs, repeats))
    return row


def matched_training(rounds=5, steps=20, batch=MATCHED_BATCH, compiled=False):
    """Training events/s of the matched configuration in ``rounds`` rounds of ``steps`` steps
    (median step of each round), both optimizers alternating: the spread between rounds shows how
    much the machine's other load moved the figure. ``compiled``: also a ``torch.compile``d copy
    (fused AdamW; its compile time is reported apart)."""
    model, info = build("matched")
    inputs = inputs_for(info, batch)
    models = {optimizer: model for optimizer in OPTIMIZERS}
    out = {}
    if compiled:
        start = time.perf_counter()
        models["adamw_fused_compiled"] = torch.compile(build("matched")[0])
        train_throughput(models["adamw_fused_compiled"], inputs, 1, "adamw_fused")  # compiles
        out["compile_seconds"] = time.perf_counter() - start
    per_round = {variant: [] for variant in models}
    loads = []
    for _ in range(rounds):
        loads.append(round(os.getloadavg()[0], 2))
        for variant, m in models.items():
            per_round[variant].append(train_throughput(m, inputs, steps, variant.replace("_compiled", "")))
    out.update({"config": "matched", "batch": batch, "rounds": rounds, "steps_per_round": steps, "loadavg": loads})
    for optimizer, values in per_round.items():
        out[optimizer] = {"median": statistics.median(values), "min": min(values), "max": max(values),
                          "rounds": values}
    return out


def token_sweep(name="cross", counts=(32, 64, 96, 128, 256), batch=128, repeats=3):
    """Cost against the number of constituent tokens (attention is quadratic in it): training with
    the network option ``cpu_kernels`` on (the bmm kernel where it pays) and off (SDPA everywhere),
    and eager inference (SDPA either way)."""
    rows = []
    for count in counts:
        row = {"config": name, "pf_tokens": count, "batch": batch}
        for cpu_kernels in (True, False):
            model, info = build(name, cpu_kernels=cpu_kernels)  # the same seed: the same weights
            inputs = inputs_for(info, batch, num_tokens={"pf": count})
            key = "on" if cpu_kernels else "off"
            row[f"train_cpu_kernels_{key}_events_per_s"] = train_throughput(model, inputs, repeats, "adamw_fused")
            if cpu_kernels:
                row["forward_flops_per_event"] = forward_flops(model, inputs) / batch
                row["eager_events_per_s"] = eager_inference_throughput(model, inputs, repeats)
        rows.append(row)
    return rows


def batch_sweep(name="matched", batches=(16, 50, 128, 512), repeats=3):
    """Training (fused AdamW) and eager inference events/s against the batch size."""
    model, info = build(name)
    rows = []
    for batch in batches:
        inputs = inputs_for(info, batch)
        rows.append({"config": name, "batch": batch,
                     "train_events_per_s": train_throughput(model, inputs, repeats, "adamw_fused"),
                     "eager_events_per_s": eager_inference_throughput(model, inputs, repeats)})
    return rows


def machine():
    """What the figures were measured on."""
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
        "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "loadavg_at_start": os.getloadavg(),
    }


# ------------------------------------------------------------------------------- the two suites


def default_weaver_data(tmp):
    """$DATADIR_hh4b/train when it holds hh4b and QCD files, else a freshly generated sample in ``tmp``."""
    train = Path(os.environ.get("DATADIR_hh4b", REPO_ROOT / "datasets" / "hh4b")) / "train"
    if list(train.glob("hh4b_*.root")) and list(train.glob("qcd_*.root")):
        return [f"sig:{train}/hh4b_*.root", f"bkg:{train}/qcd_*.root"]
    log(f"no sample in {train}: generating 300 hh4b + 300 QCD events")
    return weaver_loop.generate_sample(tmp)


def run(args, argv):
    """The CPU suite (``args``: the options of ``python -m benchmarks``), or the GPU suite with --gpu."""
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"machine": machine(), "command": shlex.join(["python", "-m", "benchmarks", *argv])}
    if args.gpu:
        return run_gpu(args, result)
    sizes = {"matched": (MATCHED_BATCH, configs.INFER_BATCH)}
    default_sizes = (configs.TRAIN_BATCH, configs.INFER_BATCH)
    repeats = args.repeats
    if args.quick:
        sizes, default_sizes, repeats = {}, (8, 8), 1

    if "matched" in args.configs or args.matched_only:
        result["matched_training"] = matched_training(1 if args.quick else args.rounds, 2 if args.quick else 30,
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
        row = measure_config(name, train_batch, infer_batch, repeats)
        row["loadavg"] = [round(load, 2), round(os.getloadavg()[0], 2)]
        result["configs"].append(row)
        log(f"{name}: train {row['train_adamw_fused_events_per_s']:.0f} ev/s, eager {row['eager_events_per_s']:.0f} "
            f"ev/s, onnx {row['onnx_events_per_s']:.0f} ev/s (loadavg {row['loadavg']})")
    if not (args.quick or args.no_sweeps):
        load = os.getloadavg()[0]
        result["token_sweep"] = token_sweep()
        log("token sweep done")
        result["batch_sweep"] = batch_sweep()
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


# weaver's loop on the GPU: (data loading options, what they are); cross at the GPU batch, bf16 autocast.
# In the main process the batches are gathered whole (multiscale.weaver_batches) unless batched_loader is False
WEAVER_GPU_VARIANTS = (
    ({"in_memory": True, "num_workers": 0, "fetch_step": 1}, "--in-memory, loading in the main process"),
    ({"in_memory": False, "num_workers": 0, "fetch_step": 0.1}, "files read during training, main process"),
    ({"in_memory": False, "num_workers": 4, "fetch_step": 1}, "files read during training, 4 workers"),
    ({"in_memory": True, "num_workers": 4, "fetch_step": 1}, "--in-memory, 4 workers"),
    ({"in_memory": True, "num_workers": 0, "fetch_step": 1, "batched_loader": False},
     "--in-memory, main process, weaver's per-event batches (-o batched_loader False)"),
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
            for variant, what in [WEAVER_GPU_VARIANTS[i] for i in args.weaver_variants]:
                options = {k: v for k, v in variant.items() if k != "batched_loader"}
                network_options = {"fusion": "cross", "batched_loader": variant.get("batched_loader", True)}
                if time.perf_counter() - start > args.weaver_budget:
                    result["weaver_gpu"].append({**options, "what": what, "skipped": "weaver budget spent"})
                    continue
                try:
                    w = weaver_loop.weaver_throughput(
                        data, data_config="data/jets_kin.yaml", batch=batch, steps=args.weaver_steps, epochs=2,
                        options=network_options, gpus="0" if device == "cuda" else "",
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


def _finish(result):
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    result["seconds"] = elapsed()
    return result
