"""Run a command on a GPU slot of this machine, so that trainings share the GPUs (workflow/rules/train.smk):

    python -m multiscale.study.gpu_slots --gpus 2 --per-gpu 1 --lock-dir DIR -- COMMAND...

Snakemake's ``gpu`` resource bounds how many trainings run at once; this chooses which GPU each one uses. It
takes the first free slot of ``gpus x per-gpu`` (an exclusive lock on ``DIR/slot<i>.lock``, held by the command
and its children for their whole life, and released by the kernel however they end), sets
``CUDA_VISIBLE_DEVICES`` to that slot's GPU and becomes the command. Under a batch system that has chosen the
GPU already (``CUDA_VISIBLE_DEVICES`` set), the command runs as it is.
"""

import argparse
import fcntl
import os
import sys
import time
from pathlib import Path

WAIT_SECONDS = 1.0  # between looks for a free slot (only when more commands run than slots: not via Snakemake)


def take_slot(lock_dir, n_slots):
    """(slot index, open locked file descriptor) of the first free slot; waits for one."""
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    while True:
        for slot in range(n_slots):
            fd = os.open(lock_dir / f"slot{slot}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return slot, fd
        time.sleep(WAIT_SECONDS)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m multiscale.study.gpu_slots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", type=int, required=True, help="GPUs of this machine")
    parser.add_argument("--per-gpu", type=int, default=1, help="commands sharing one GPU at a time (default: 1)")
    parser.add_argument("--lock-dir", required=True, help="where the slots' lock files live")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (after --)")
    if args.gpus < 1 or args.per_gpu < 1:
        parser.error("--gpus and --per-gpu must be positive")
    if os.environ.get("CUDA_VISIBLE_DEVICES"):  # a batch system's choice
        os.execvp(command[0], command)
    slot, fd = take_slot(args.lock_dir, args.gpus * args.per_gpu)
    os.set_inheritable(fd, True)  # the lock lives as long as the command and its children
    os.environ["CUDA_VISIBLE_DEVICES"] = str(slot // args.per_gpu)
    print(f"gpu_slots: slot {slot}: CUDA_VISIBLE_DEVICES={slot // args.per_gpu}", file=sys.stderr, flush=True)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
