"""weaver's training command with the time each step waits for its batch recorded.

    python -m benchmarks.weaver_timed WEAVER_TRAIN_ARGS...     # in the repository root

runs ``weaver.train.main()`` unchanged, except that the progress bar weaver wraps around each data
loader (``tqdm.tqdm(loader)`` in ``weaver.utils.nn.tools``) also times every ``next()`` on the
loader: the wait for the batch (reading and preprocessing the files, the per-event iteration and
collation, or the hand-over from worker processes). weaver calls ``.item()`` at every training
step, so the host waits for the GPU once per step and host intervals are step times. Per loop
(training loops: gradients enabled when the loop starts; evaluation loops run under no_grad) one
JSON line goes to the file named by $MULTISCALE_WEAVER_TIMING:
batches, first_wait_s (the first batch: with --in-memory, loading all the files; with workers,
their start), and over the later batches wait_s, step_s (start of one next() to the start of the
next) and wait_fraction = wait_s / step_s.
"""

import json
import os
import sys
import time

import tqdm as _tqdm

import torch


class _TimedIterable:
    def __init__(self, iterable, record):
        self._iterable = iterable
        self._record = record

    def __len__(self):
        return len(self._iterable)  # TypeError for an IterableDataset's loader: tqdm then counts without a total

    def __iter__(self):
        starts, waits = self._record["starts"], self._record["waits"]
        iterator = iter(self._iterable)
        while True:
            start = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                return
            waits.append(time.perf_counter() - start)
            starts.append(start)
            yield item


def summarise(record):
    """The JSON line of one loop from its next() start times and waits."""
    starts, waits = record["starts"], record["waits"]
    out = {"train": record["train"], "batches": len(waits), "first_wait_s": waits[0] if waits else None}
    if len(starts) >= 3:  # intervals between later batches: batch k's wait plus its step
        step = starts[-1] - starts[1]
        wait = sum(waits[1:-1])
        out.update({"wait_s": wait, "step_s": step, "wait_fraction": wait / step if step > 0 else None,
                    "steps_timed": len(starts) - 2})
    return out


class _TimedTqdmModule:
    """Stands in for the ``tqdm`` module inside ``weaver.utils.nn.tools``."""

    def __init__(self, path):
        self._path = path

    def tqdm(self, iterable=None, *args, **kwargs):
        record = {"train": torch.is_grad_enabled(), "starts": [], "waits": []}
        bar = _tqdm.tqdm(_TimedIterable(iterable, record), *args, **kwargs)
        close = bar.close

        def close_and_write():
            if not record.get("written"):
                record["written"] = True
                with open(self._path, "a") as f:
                    f.write(json.dumps(summarise(record)) + "\n")
            close()

        bar.close = close_and_write
        return bar

    def __getattr__(self, name):
        return getattr(_tqdm, name)


def main(argv):
    import weaver.train
    import weaver.utils.nn.tools as tools

    path = os.environ.get("MULTISCALE_WEAVER_TIMING")
    if path:
        tools.tqdm = _TimedTqdmModule(path)
    sys.argv = ["weaver", *argv]
    weaver.train.main()


if __name__ == "__main__":
    main(sys.argv[1:])
