"""The matched configuration trained through weaver, set beside the same network alone, interleaved.

    python -m benchmarks.weaver_matched --data 'sig:DIR/hh4b_*.root' 'bkg:DIR/qcd_*.root' \\
        --rounds 3 --out docs/benchmark_weaver_matched.json

Each round runs, each in a fresh process, in an order that rotates from round to round:
- ``model``: the network alone (``benchmarks.configs`` 'matched': 50 x 7 synthetic inputs, batch 50,
  fused AdamW), 7 x 30 steps after 15 warm-up steps (``benchmarks.reference.ab_matched``);
- one weaver training per variant: ``weaver --in-memory --fetch-step 1`` on benchmarks/matched.yaml
  (the same network fed the same shapes from ROOT files), batch 50, fused AdamW, ``--steps-per-epoch
  STEPS --num-epochs 2``: epoch 2's speed from weaver's own log (epoch 1 also reads the files).
The machine's speed drifts (docs/performance.md), so each weaver figure is also divided by the
model figure of its own round; the report gives medians and ranges of both, and the load averages.

``--in-process`` measures the same in one process, interleaved finely enough to survive a machine
whose speed changes by the minute: weaver's own training function (``train_classification``,
unchanged: gradient clipping, ``.item()`` calls, progress bar) over weaver's DataLoader of the
files in memory, over the batched loader, and the network alone on synthetic inputs, in blocks
of ``--block`` steps taken in turn, one model and optimizer for all. ``--fetch DATA_CONFIG BATCH``
times only getting one batch, from weaver's DataLoader and from the batched loader, in turn.
"""

import argparse
import json
import os
import statistics
import sys

from . import REPO_ROOT
from .configs import MATCHED_BATCH, MATCHED_OPTIONS
from .reference.ab_matched import run_variant
from .weaver_loop import generate_sample, weaver_throughput

DATA_CONFIG = "benchmarks/matched.yaml"
# name -> (network options on top of the matched ones, --num-workers, more weaver arguments, what it is)
VARIANTS = {
    "batched": ({}, 0, (), "this project's default: batches gathered whole (multiscale.weaver_batches)"),
    "per-event": ({"batched_loader": False}, 0, (), "weaver's own per-event batches (-o batched_loader False)"),
    "per-event-1-worker": ({"batched_loader": False}, 1, (),
                           "weaver's defaults: per-event batches built in one worker process (--num-workers 1)"),
    "batched-compile": ({}, 0, ("--compile",), "batched, with weaver's --compile (torch.compile, inductor)"),
}


def model_alone():
    """Training events/s of the network alone: the mean step of ab_matched's 7 x 30 timed steps."""
    times = run_variant(str(REPO_ROOT), "matched")
    return MATCHED_BATCH / statistics.mean(times)


def through_weaver(data, variant, steps):
    options, workers, extra, _ = VARIANTS[variant]
    result = weaver_throughput(data, data_config=DATA_CONFIG, batch=MATCHED_BATCH, steps=steps, epochs=2,
                               options={**MATCHED_OPTIONS, **options}, num_workers=workers, extra_args=extra)
    return result


def in_memory_loader(data, data_config, batch):
    """weaver's training DataLoader of the files in memory, in this process, as its train_load builds it."""
    import glob

    from torch.utils.data import DataLoader
    from weaver.utils.dataset import SimpleIterDataset

    from multiscale.weaver_io import register_custom_functions

    register_custom_functions()
    files = {}
    for item in data:
        name, _, pattern = item.rpartition(":")
        files.setdefault(name or "_", []).extend(sorted(glob.glob(pattern)))
    dataset = SimpleIterDataset(files, str(REPO_ROOT / data_config), batch_size=batch, for_training=True,
                                load_range_and_fraction=((0, 0.8), 1, 1), fetch_step=1, infinity_mode=True,
                                in_memory=True, name="train")
    return DataLoader(dataset, batch_size=batch, drop_last=True, num_workers=0)


def fetch_times(data, data_config, batch, rounds=30):
    """Milliseconds to get one batch from weaver's DataLoader (per event) and from the batched loader,
    taken in turn ``rounds`` times (the files loaded before)."""
    import time

    from multiscale.weaver_batches import BatchedLoader

    loader = in_memory_loader(data, data_config, batch)
    batches = {"per-event": iter(loader), "batched": iter(BatchedLoader(loader))}
    for it in batches.values():
        next(it)
    ms = {name: [] for name in batches}
    for _ in range(rounds):
        for name, it in batches.items():
            start = time.perf_counter()
            next(it)
            ms[name].append((time.perf_counter() - start) * 1e3)
    return {"data_config": data_config, "batch": batch, "ms_per_batch": {k: summary(v) for k, v in ms.items()},
            "loadavg": os.getloadavg()}


def in_process(data, rounds, block, log=print):
    """Milliseconds per step of each loop, blocks of ``block`` steps in turn, ``rounds`` times."""
    import logging
    import time
    import types

    import torch
    from weaver.utils.nn.tools import train_classification

    from multiscale.network import get_loss, get_model
    from multiscale.weaver_batches import BatchedLoader

    from .configs import inputs_for
    from .timing import training_step

    loader = in_memory_loader(data, DATA_CONFIG, MATCHED_BATCH)
    model, info = get_model(loader.dataset.config, **MATCHED_OPTIONS)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    loss = get_loss(loader.dataset.config)
    weaver_args = {"args": types.SimpleNamespace(use_amp=False, amp_dtype="bf16", regression_mode=False)}
    model_step = training_step(model, inputs_for(info, MATCHED_BATCH), "adamw_fused")

    def weaver_loop(batches):
        return lambda: train_classification(model, loss, opt, None, batches, "cpu", 0, steps_per_epoch=block,
                                            extra_args=weaver_args)

    loops = {"model": lambda: [model_step() for _ in range(block)], "batched": weaver_loop(BatchedLoader(loader)),
             "per-event": weaver_loop(loader)}
    logging.getLogger("weaver").setLevel(logging.WARNING)  # weaver's per-epoch lines, once per block
    for run_loop in loops.values():
        run_loop()  # warm-up; the first also loads the files
    ms = {name: [] for name in loops}
    loads = []
    for r in range(rounds):
        loads.append(os.getloadavg())
        for name, run_loop in loops.items():
            start = time.perf_counter()
            run_loop()
            ms[name].append((time.perf_counter() - start) / block * 1e3)
        log(f"round {r}: " + ", ".join(f"{name} {values[-1]:.1f} ms/step" for name, values in ms.items()))
    result = {"mode": "in-process", "block": block, "rounds": rounds, "batch": MATCHED_BATCH, "data": data,
              "data_config": DATA_CONFIG, "network_options": MATCHED_OPTIONS, "ms_per_step": ms,
              "loadavg_per_round": loads, "summary": {}}
    for name, values in ms.items():
        speeds = [MATCHED_BATCH / v * 1e3 for v in values]
        result["summary"][name] = {"events_per_s": summary(speeds)}
        if name != "model":
            result["summary"][name]["fraction_of_model"] = summary([m / v for m, v in zip(ms["model"], values)])
    return result


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def run(data, variants, rounds, steps, log=print):
    order = ["model", *variants]
    runs = []
    for r in range(rounds):
        shift = r % len(order)
        for name in order[shift:] + order[:shift]:
            load = os.getloadavg()
            if name == "model":
                row = {"events_per_s": model_alone()}
            else:
                w = through_weaver(data, name, steps)
                row = {"events_per_s": w["steady_events_per_s"], "first_epoch_events_per_s": w["first_epoch_events_per_s"],
                       "wall_s": w["wall_s"], "command": w["command"]}
            runs.append({"round": r, "variant": name, "loadavg_before": load, "loadavg_after": os.getloadavg(), **row})
            log(f"round {r}: {name:20s} {row['events_per_s']:7.0f} events/s   load {load[0]:.2f}")
    result = {"steps_per_epoch": steps, "batch": MATCHED_BATCH, "data": data, "data_config": DATA_CONFIG,
              "network_options": MATCHED_OPTIONS, "runs": runs,
              "variants": {name: VARIANTS[name][3] for name in variants}, "summary": {}}
    model_by_round = {row["round"]: row["events_per_s"] for row in runs if row["variant"] == "model"}
    for name in order:
        rows = [row for row in runs if row["variant"] == name]
        result["summary"][name] = {"events_per_s": summary([row["events_per_s"] for row in rows])}
        if name != "model":
            ratios = [row["events_per_s"] / model_by_round[row["round"]] for row in rows]
            result["summary"][name]["fraction_of_model"] = summary(ratios)
    return result


def _torch_threads():
    import torch

    return torch.get_num_threads()


def print_summary(result, out=sys.stdout):
    if "ms_per_batch" in result:
        for name, s in result["ms_per_batch"].items():
            print(f"{result['data_config']} batch {result['batch']}, {name:10s}: median {s['median']:.2f} ms per batch "
                  f"(range {s['min']:.2f}-{s['max']:.2f})", file=out)
        return
    print(f"{'':22s} {'events/s median (range)':>26s} {'of the model, same round: median (range)':>44s}", file=out)
    for name, s in result["summary"].items():
        e = s["events_per_s"]
        line = f"{name:22s} {e['median']:8.0f} ({e['min']:.0f}-{e['max']:.0f})".ljust(50)
        if "fraction_of_model" in s:
            f = s["fraction_of_model"]
            line += f"{f['median']:6.0%} ({f['min']:.0%}-{f['max']:.0%})"
        print(line, file=out)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.weaver_matched", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", metavar="NAME:GLOB",
                        help="ROOT files, weaver's --data-train syntax (default: a 300 + 300 event sample generated here)")
    parser.add_argument("--variants", nargs="+", default=["batched", "per-event", "per-event-1-worker"],
                        choices=sorted(VARIANTS), help="weaver variants (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default %(default)s)")
    parser.add_argument("--steps", type=int, default=210, help="weaver steps per epoch (default %(default)s)")
    parser.add_argument("--in-process", action="store_true",
                        help="one process, blocks of steps in turn (see above) instead of weaver commands")
    parser.add_argument("--block", type=int, default=20, help="--in-process: steps per block (default %(default)s)")
    parser.add_argument("--fetch", nargs=2, metavar=("DATA_CONFIG", "BATCH"),
                        help="only the time to get one batch, per event and batched (e.g. data/jets_kin.yaml 512)")
    parser.add_argument("--out", help="JSON file to write")
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or generate_sample(tmp)
        if args.fetch:
            result = fetch_times(data, args.fetch[0], int(args.fetch[1]), rounds=max(args.rounds, 30))
        elif args.in_process:
            result = in_process(data, args.rounds, args.block)
        else:
            result = run(data, args.variants, args.rounds, args.steps)
    result["loadavg_at_end"] = os.getloadavg()
    result["threads"] = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "torch": _torch_threads()}
    print_summary(result)
    if args.out:
        part = args.out + ".part"
        with open(part, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(part, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
