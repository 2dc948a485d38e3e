"""Training events/s of the real weaver loop on ROOT files, read from weaver's own log.

The model is ``matched`` (see ``configs``) fed from data/jets.yaml: the network keeps the 50
leading constituents and the 7 kinematic features of its particle stream (``jet_max_tokens``,
``jet_max_features``), so the pure-model figure on synthetic 50 x 7 inputs and this one describe
the same network. What weaver adds: reading the files and building the inputs (the first epoch,
with --in-memory), then per step the batch from memory, its gradient clipping, ``.item()`` calls
and progress bar.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

from . import REPO_ROOT
from .configs import MATCHED_BATCH, MATCHED_OPTIONS, build_from, inputs_for
from .timing import train_throughput

WEAVER_MATCHED_OPTIONS = {**MATCHED_OPTIONS, "jet_max_tokens": 50, "jet_max_features": 7}
_PROCESSED = re.compile(r"Processed (\d+) entries in total \(avg\. speed ([\d.]+) entries/s\)")


def parse_weaver_log(text):
    """Training-epoch speeds from weaver's log: each 'Processed N entries ... (avg. speed X
    entries/s)' line directly followed by 'Train AvgLoss' (validation lines are not)."""
    lines = text.splitlines()
    epochs = []
    for i, line in enumerate(lines):
        match = _PROCESSED.search(line)
        if match and i + 1 < len(lines) and "Train AvgLoss" in lines[i + 1]:
            epochs.append({"entries": int(match.group(1)), "events_per_s": float(match.group(2))})
    return epochs


def pure_model_events_per_s(batch=MATCHED_BATCH, repeats=20):
    """Training events/s of the same network on synthetic inputs of data/jets.yaml's shapes,
    fused AdamW: the figure to set beside weaver's."""
    model, info = build_from("jets.yaml", WEAVER_MATCHED_OPTIONS)
    return train_throughput(model, inputs_for(info, batch), repeats, "adamw_fused")


def generate_sample(outdir, events=300, seed=7):
    """A small hh4b + QCD sample with the project's generator, for when no ROOT files are given."""
    for process in ("hh4b", "qcd"):
        subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "generate_events.py"), "--process", process,
                        "--events", str(events), "--events-per-file", str((events + 1) // 2), "--jobs", "2",
                        "--seed", str(seed), "--outdir", str(outdir)], check=True, capture_output=True)
    return [f"sig:{outdir}/hh4b_*.root", f"bkg:{outdir}/qcd_*.root"]


def weaver_throughput(train_globs, data_config="data/jets.yaml", batch=50, steps=60, epochs=2,
                      options=WEAVER_MATCHED_OPTIONS, optimizer_options=(("fused", True),), gpus="",
                      in_memory=True, num_workers=0, fetch_step=1, extra_args=(), timed=False):
    """Run ``weaver [--in-memory] --steps-per-epoch`` and return its per-epoch speeds.

    weaver times each epoch's loop itself (the 'avg. speed' of its log). With --in-memory the
    ROOT files are read and preprocessed when the first epoch's loader starts, inside that timer:
    epoch 1 = loading + training, the last epoch = the steady loop. The wall clock of the whole
    command (start-up, validation, saving) is reported beside them. ``gpus``: weaver's --gpus
    ("" = CPU); ``extra_args``: more weaver arguments (e.g. ``--use-amp``). ``timed``: run it
    through ``weaver_timed``, which adds per training epoch the time its steps waited for their
    batch (``data_wait``).
    """
    network_options = [x for name, value in options.items() for x in ("-o", name, repr(value))]
    optimizer_args = [x for name, value in optimizer_options for x in ("-p", name, repr(value))]
    module = "benchmarks.weaver_timed" if timed else "weaver.train"  # benchmarks/: found in the cwd, REPO_ROOT
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "train.log")
        timing = os.path.join(tmp, "timing.jsonl")
        cmd = [sys.executable, "-m", module, "--data-config", str(data_config),
               "--network-config", "networks/multiscale_cross.py", "--custom-functions", "data/jet_functions.py",
               *network_options, "--gpus", gpus, "--data-train", *train_globs,
               *(["--in-memory"] if in_memory else []),
               "--steps-per-epoch", str(steps), "--num-epochs", str(epochs), "--batch-size", str(batch),
               "--start-lr", "1e-3", "--optimizer", "adamw", *optimizer_args, "--num-workers", str(num_workers),
               "--fetch-step", str(fetch_step), *extra_args, "--model-prefix", os.path.join(tmp, "net"), "--log", log]
        start = time.perf_counter()
        env = {**os.environ, "MULTISCALE_WEAVER_TIMING": timing}
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        text = open(log).read() if os.path.exists(log) else ""
        if proc.returncode:
            raise RuntimeError(f"weaver failed ({proc.returncode}):\n{(proc.stderr or text)[-3000:]}")
        loops = [json.loads(line) for line in open(timing)] if os.path.exists(timing) else []
    per_epoch = parse_weaver_log(text)
    for epoch, loop in zip(per_epoch, [loop for loop in loops if loop["train"]]):
        epoch["data_wait"] = {k: v for k, v in loop.items() if k != "train"}
    return {
        "command": shlex.join(["weaver"] + cmd[3:]).replace(tmp, "$TMP"),
        "batch": batch, "steps_per_epoch": steps, "in_memory": in_memory, "num_workers": num_workers,
        "fetch_step": fetch_step, "gpus": gpus, "extra_args": list(extra_args),
        "epochs": per_epoch,
        "steady_events_per_s": per_epoch[-1]["events_per_s"] if per_epoch else None,
        "first_epoch_events_per_s": per_epoch[0]["events_per_s"] if per_epoch else None,
        "wall_s": wall,
        "loadavg": os.getloadavg(),
    }
