"""Event loop and parallel chunks of ``tools/generate_events.py`` (its command line: ``cli.py``).

A run of N accepted events is cut into chunks of at most ``--events-per-file`` events; chunk c
becomes one file and is generated with seeds derived from (--seed, --events-per-file, c) only
(run_config.py; one chunk: chunk.py). Chunks are therefore independent: ``--jobs`` runs them in
parallel processes and the output does not depend on it; a rerun keeps the chunks already written
and generates the others (manifest.py); ``--chunks`` makes some of them only (one workflow job per
chunk: workflow/rules/events.smk).
"""

import multiprocessing
import os
import queue
import signal
import sys
import time
from pathlib import Path

from ..processes import die_with_parent
from . import manifest
from .chunk import generate_chunk
from .clustering import silence_banner
from .pythia_setup import GenerationError
from .run_config import RunConfig, chunk_seeds, seed_entropy
from .sources import prepare_inputs
from .writer import remove_partial, remove_stale

__all__ = ["GenerationError", "RunConfig", "chunk_seeds", "generate", "generate_chunk", "kept_chunks", "seed_entropy"]


# ---------------------------------------------------------------------------------------------
# many chunks, in parallel


_progress_queue = None


def _init_worker(progress_queue, parent_pid):
    """Pool worker setup: progress goes to the parent, and the worker never outlives it."""
    global _progress_queue
    _progress_queue = progress_queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent stops the pool
    # Pool.terminate() or the parent's death: die at once. A Python-level handler would wait for
    # the interpreter (a Pythia batch, or forever in a lock) and Pool.terminate() would hang
    # joining the worker; the parent removes the temporary files of the chunks it did not finish.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(parent_pid)


def _worker(config, chunk, inputs):
    return generate_chunk(config, chunk, progress=lambda g, a: _progress_queue.put((g, a)), inputs=inputs)


class _Progress:
    """tqdm bar of accepted events, with the acceptance so far in the postfix; off a terminal (a
    log file, a batch job) a plain line every LINE_SECONDS instead. Warns once when the preselection
    keeps almost nothing, which would otherwise look like a hang."""

    LINE_SECONDS = 30.0
    LOW_ACCEPTANCE, LOW_ACCEPTANCE_AFTER = 0.01, 2000

    def __init__(self, config):
        from tqdm import tqdm

        self.config = config
        self.generated = self.accepted = 0  # counted here: a disabled tqdm bar counts nothing
        if config.inputs:  # input files: accepted events not known ahead
            self.target = None
        else:
            self.target = config.events if config.chunks is None else sum(config.chunk_events(c) for c in config.chunks)
        self.bar = tqdm(total=self.target, unit="evt", desc=config.process, disable=None)
        self.last_line = time.monotonic()
        self.warned = False

    def __call__(self, generated, accepted):
        self.generated += generated
        self.accepted += accepted
        self.bar.update(accepted)
        acceptance = self.accepted / max(self.generated, 1)
        self.bar.set_postfix(generated=self.generated, acceptance=f"{acceptance:.3f}")
        if self.bar.disable and time.monotonic() - self.last_line > self.LINE_SECONDS:
            self.last_line = time.monotonic()
            print(f"{self.config.process}: {self.accepted}/{self.target or 'all'} accepted, {self.generated} generated "
                  f"(acceptance {acceptance:.3f})", file=sys.stderr, flush=True)
        if not self.warned and self.generated >= self.LOW_ACCEPTANCE_AFTER and acceptance < self.LOW_ACCEPTANCE:
            self.warned = True
            remedy = "the input files hold few such events" if self.config.inputs else "raise --pthat-min towards them"
            print(f"generate_events.py: warning: acceptance {acceptance:.4f} after {self.generated} generated "
                  f"{self.config.process} events: the preselection (fat jets above {self.config.fj1_ptmin:g} and "
                  f"{self.config.fj2_ptmin:g} GeV) keeps almost nothing; {remedy}", file=sys.stderr, flush=True)

    def close(self):
        self.bar.close()


def kept_chunks(config):
    """chunk -> summary of the chunks this very run already wrote (ManifestError for another run's)."""
    return manifest.kept_chunks(config, lambda chunk: chunk_seeds(config.seed, chunk, config.events_per_file)[0])


def generate(config, kept=None, inputs=None):
    """Generate the chunks of ``config`` not on disk yet, then write the manifest (last); returns
    every chunk's summary in chunk order. A complete run is left as it is. ``kept``: what
    ``kept_chunks(config)`` returned, ``inputs``: what ``prepare_inputs(config)`` did (with the
    config it returned), if the caller has them already."""
    Path(config.outdir).mkdir(parents=True, exist_ok=True)
    remove_stale(config.outdir, manifest.run_name(config))
    if config.inputs and inputs is None:
        config, inputs = prepare_inputs(config)
    if kept is None:
        kept = kept_chunks(config)
    wanted = range(config.n_chunks) if config.chunks is None else config.chunks
    if manifest.is_complete(config, kept) or (config.chunks is not None and all(chunk in kept for chunk in wanted)):
        return [kept[chunk] for chunk in wanted]
    missing = [chunk for chunk in wanted if chunk not in kept]
    silence_banner()
    progress = _Progress(config)
    if kept:
        progress(sum(s["n_generated"] for s in kept.values()), sum(s["n_accepted"] for s in kept.values()))
    try:
        if config.jobs == 1 or len(missing) <= 1:
            new = [generate_chunk(config, chunk, progress, inputs) for chunk in missing]
        else:
            new = _generate_parallel(config, progress, missing, inputs)
    except BaseException:
        # workers killed mid-write (Ctrl-C, SIGTERM, a failing sibling) leave their temporary files
        remove_partial(config.outdir, [config.file_stem(chunk) for chunk in missing])
        raise
    finally:
        progress.close()
    summaries = sorted([*kept.values(), *new], key=lambda summary: summary["chunk"])
    if config.chunks is not None:  # a part of the run (e.g. one workflow job): no manifest
        return [summary for summary in summaries if summary["chunk"] in wanted]
    manifest.write_manifest(config, summaries)
    return summaries


def _generate_parallel(config, progress, chunks, inputs):
    context = multiprocessing.get_context("fork")
    progress_queue = context.Queue()
    initargs = (progress_queue, os.getpid())
    # leaving the block (done, an exception, Ctrl-C, SIGTERM) terminates the workers
    with context.Pool(min(config.jobs, len(chunks)), _init_worker, initargs) as pool:
        results = [pool.apply_async(_worker, (config, chunk, inputs)) for chunk in chunks]
        while not all(result.ready() for result in results):
            _drain(progress_queue, progress, timeout=0.2)
            for result in results:  # fail fast: a worker's exception ends the run
                if result.ready() and not result.successful():
                    result.get()
        _drain(progress_queue, progress, timeout=0.0)
        return [result.get() for result in results]


def _drain(progress_queue, progress, timeout):
    try:
        progress(*progress_queue.get(timeout=timeout))
        while True:
            progress(*progress_queue.get_nowait())
    except queue.Empty:
        pass
