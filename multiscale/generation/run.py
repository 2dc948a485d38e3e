"""Event loop and parallel chunks of ``tools/generate_events.py`` (its command line: ``cli.py``).

A run of N accepted events is cut into chunks of at most ``--events-per-file`` events; chunk c
becomes one file and is generated with seeds derived from (--seed, --events-per-file, c) only.
Chunks are therefore independent: ``--jobs`` runs them in parallel processes and the output does
not depend on it; a rerun keeps the chunks already written and generates the others (manifest.py);
``--chunks`` makes some of them only (one workflow job per chunk: workflow/rules/events.smk).
"""

import importlib.metadata
import math
import multiprocessing
import os
import queue
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import awkward as ak
import numpy as np

from ..definitions import PRESELECTION
from ..processes import die_with_parent
from ..schema import HF_FILTER_SUFFIX, PHASE_SPACES, PROCESS_CODES, SIGNAL_PROCESSES, file_stem
from . import btagging, hf_filter, manifest, slices
from .btagging import TagEfficiencies
from .clustering import silence_banner
from .event_record import ChargeTable
from .pythia_setup import MAX_SEED, GenerationError
from .reconstruction import Selection, reconstruct
from .sources import chunk_input, input_summary, open_source, prepare_inputs
from .writer import file_sha256, remove_partial, remove_stale, write_json, write_root

MIN_BATCH, MAX_BATCH = 20, 200  # Pythia events per nextBatch call


@dataclass(frozen=True)
class RunConfig:
    process: str
    events: int
    outdir: str
    seed: int = 1
    jobs: int = 1
    events_per_file: int = 10000
    mH: float = 1000.0
    pthat_min: float = 300.0
    pthat_bias: float = 0.0  # power of the pT-hat biasing (0: unweighted events)
    max_constituents: int = PRESELECTION.max_constituents
    xsec_fb: float | None = None
    fj1_ptmin: float = PRESELECTION.fj1_ptmin
    fj2_ptmin: float = PRESELECTION.fj2_ptmin
    fj_etamax: float = PRESELECTION.fj_etamax
    btag_eff: float = TagEfficiencies.b
    ctag_mistag: float = TagEfficiencies.c
    light_mistag: float = TagEfficiencies.light
    input_format: str = "pythia"  # "pythia" (built-in process), "lhe" or "hepmc" (chunks: ranges of the files' events)
    inputs: tuple = ()
    no_btag_labels: bool = False
    merging: str = "auto"  # LHE: "auto" (what the MadGraph header says) or "none" (merging.py)
    merging_scale: float | None = None  # GeV, LHE merging scale when the header has none or to override it
    merging_process: str | None = None  # CKKW-L Merging:Process when the header's cannot be translated
    input_events: tuple = ()  # events of each input file (prepare_inputs): the chunks are ranges of them
    input_sha256: tuple = ()  # content hash of each input file (prepare_inputs): a changed file is another run
    chunks: tuple | None = None  # only these chunks (None: the whole run, then the manifest)
    hf_filter: str | None = None  # "require" or "veto": the heavy-flavour filter (hf_filter.py), built-in processes
    flavour_labelling: str = btagging.LABELLING  # the b-tag labelling rule: files of another rule are another run

    @property
    def phase_space(self):
        return hf_filter.MODES[self.hf_filter] if self.hf_filter else PHASE_SPACES["inclusive"]

    @property
    def is_signal(self):
        return self.process in SIGNAL_PROCESSES

    @property
    def n_chunks(self):
        return len(self.input_ranges()) if self.inputs else math.ceil(self.events / self.events_per_file)

    def input_ranges(self):
        """(file index, first event, end event) of each chunk of an LHE or HepMC3 run: the first
        ``events`` events of the files (all when 0) in ranges of ``events_per_file`` (slices.py)."""
        return slices.event_ranges(self.input_events, self.events_per_file, self.events or None)

    def chunk_events(self, chunk):
        """Accepted events chunk ``chunk`` makes; None: every event of its range of input events is read."""
        if self.inputs:
            return None
        return min(self.events_per_file, self.events - chunk * self.events_per_file)

    def file_stem(self, chunk):
        return file_stem(self.process, self.mH, self.seed, chunk, HF_FILTER_SUFFIX.get(self.hf_filter, ""))

    def selection(self):
        return Selection(self.fj1_ptmin, self.fj2_ptmin, self.fj_etamax, self.max_constituents)

    def efficiencies(self):
        return TagEfficiencies(self.btag_eff, self.ctag_mistag, self.light_mistag)


def seed_entropy(seed, chunk, events_per_file):
    """The chunk's seed entropy: events_per_file is in it, as chunk c of another chunking holds
    other events (event_id = c * events_per_file + i), so the same --seed must not repeat them."""
    return [seed, events_per_file, chunk]


def chunk_seeds(seed, chunk, events_per_file=RunConfig.events_per_file):
    """(Pythia seed, numpy seed sequence) of chunk ``chunk``: a pure function of (seed, chunk, events_per_file)."""
    pythia_sequence, tagging_sequence = np.random.SeedSequence(seed_entropy(seed, chunk, events_per_file)).spawn(2)
    pythia_seed = int(pythia_sequence.generate_state(1, np.uint32)[0]) % MAX_SEED + 1
    return pythia_seed, tagging_sequence


# ---------------------------------------------------------------------------------------------
# one chunk


def generate_chunk(config, chunk, progress=None, inputs=None):
    """Generate (or read), reconstruct and write chunk ``chunk`` of the run; returns its summary dict.
    ``inputs``: the checked input files of an LHE or HepMC3 run (sources.inspect_inputs)."""
    start_time, start_cpu = time.perf_counter(), time.process_time()
    target = config.chunk_events(chunk)
    pythia_seed, tagging_sequence = chunk_seeds(config.seed, chunk, config.events_per_file)
    source = open_source(config, chunk, pythia_seed, inputs)
    rng = np.random.default_rng(tagging_sequence)
    charges = ChargeTable(source.particle_data())
    selection, efficiencies = config.selection(), config.efficiencies()

    pieces, n_generated, n_accepted, n_failed = [], 0, 0, 0
    weight_sum = 0.0  # event weights of the generated events (their number when unweighted)
    batch_size = MIN_BATCH
    try:
        while target is None or n_accepted < target:
            batch = source.next(batch_size)
            n_ok = 0 if batch.particles is None else batch.particles.n_events
            n_failed += batch.n_read - n_ok
            if n_ok:
                accepted, columns = reconstruct(batch.particles, charges, selection, efficiencies, rng)
                batch_generated = n_ok
                if target is not None and len(accepted) > target - n_accepted:
                    # stop at the last event kept: later events of the batch count as not generated
                    need = target - n_accepted
                    columns = {name: values[:need] for name, values in columns.items()}
                    batch_generated = int(accepted[need - 1]) + 1
                    accepted = accepted[:need]
                n_generated += batch_generated
                weight_sum += batch.weights[:batch_generated].sum()
                n_accepted += len(accepted)
                if columns is not None:
                    columns["pythia_weight"] = batch.weights[accepted]
                    pieces.append(columns)
                if progress is not None:
                    progress(batch_generated, len(accepted))
            if batch.exhausted:
                break
            if target is not None:  # size the next batch to what the remaining events need at the acceptance so far
                acceptance = max(n_accepted / max(n_generated, 1), 0.01)
                batch_size = int(np.clip(1.2 * (target - n_accepted) / acceptance, MIN_BATCH, MAX_BATCH))
            else:
                batch_size = MAX_BATCH
    finally:
        source.close()

    item, event_range = chunk_input(config, chunk, inputs) if inputs else (None, None)
    if n_accepted == 0:
        raise GenerationError(_nothing_passed(config, chunk, source, item, event_range, n_generated))
    sigma_gen_fb = source.cross_section_fb()
    xsec_fb = config.xsec_fb if config.xsec_fb is not None else sigma_gen_fb  # inspect_inputs checked one exists
    columns = _concatenate(pieces)
    pythia_weight = columns.pop("pythia_weight")
    columns.update(_event_scalars(config, chunk, pythia_weight, weight_sum, xsec_fb))

    outdir = Path(config.outdir)
    stem = config.file_stem(chunk)
    write_root(outdir / f"{stem}.root", columns)
    skipped = source.skipped_events()
    summary = {
        "file": f"{stem}.root",
        "process": config.process,
        "chunk": chunk,
        "seed": config.seed,
        "pythia_seed": pythia_seed,
        "tagging_seed_entropy": seed_entropy(config.seed, chunk, config.events_per_file),
        "settings": asdict(config),
        "versions": _versions(),
        "xsec_fb": xsec_fb,
        "xsec_source": "--xsec-fb" if config.xsec_fb is not None else source.cross_section_source(),
        "sigma_gen_fb": sigma_gen_fb,
        **source.summary(),
        "n_generated": n_generated,
        "n_accepted": n_accepted,
        "n_pythia_failures": n_failed,
        # input events not reconstructed, by why (malformed, cut, Pythia failed): docs/generation.md
        "n_skipped_input_events": sum(skipped.values()),
        "skipped_input_events": skipped,
        "file_sha256": file_sha256(outdir / f"{stem}.root"),  # what a rerun checks the file against
        "acceptance": float(columns["acceptance"][0]),
        "pthat_bias": config.pthat_bias,
        "pythia_weight_sum": weight_sum,
        "n_effective": float(pythia_weight.sum() ** 2 / (pythia_weight**2).sum()),
        "n_negative_weights": int((pythia_weight < 0).sum()),  # NLO: signed weights, kept as they are
        # per event when every event weighs the same
        "weight_fb": xsec_fb / n_generated if np.ptp(pythia_weight) == 0 and config.pthat_bias == 0 else None,
        "wall_time_s": round(time.perf_counter() - start_time, 3),
    }
    # one process per chunk: written events per hour of one core (CPU time: not slowed by other jobs)
    summary["cpu_time_s"] = round(time.process_time() - start_cpu, 3)
    summary["accepted_per_core_hour"] = round(n_accepted / max(summary["cpu_time_s"], 1e-9) * 3600.0, 1)
    if item is not None:
        summary["source"] = input_summary(item, event_range)
    try:
        write_json(outdir / f"{stem}.json", summary)
    except BaseException:  # e.g. a full disk: a .root without its sidecar is half a chunk
        (outdir / f"{stem}.root").unlink(missing_ok=True)
        raise
    return summary


def _nothing_passed(config, chunk, source, item, event_range, n_generated):
    """Why chunk ``chunk`` has no event to write, in one line: the merging vetoed all of its events, Pythia
    could process none, or none passed the preselection."""
    what = f"{config.process} (chunk {chunk})"
    if item is not None:
        what = f"{item.path} (events {event_range[0]}-{event_range[1] - 1})"
    merging = getattr(source, "merging", None)
    if n_generated == 0 and item is not None:
        n_input = event_range[1] - event_range[0]
        skipped = sum(source.skipped_events().values())
        if merging is not None and merging.merged and skipped < n_input:
            return (f"{what}: the {merging.scheme} merging vetoed all of its {n_input - skipped} events (merging scale "
                    f"{merging.details['merging_scale_gev']:g} GeV); nothing written: give the chunk more events "
                    "(--events-per-file)")
        return f"{what}: none of its {n_input} events could be read or showered; nothing written"
    return (f"{what}: none of its {n_generated} events passed the preselection (two fat jets above "
            f"{config.fj1_ptmin:g} and {config.fj2_ptmin:g} GeV, |eta| < {config.fj_etamax:g}); nothing written")


def _concatenate(pieces):
    columns = {}
    for name, first in pieces[0].items():
        parts = [piece[name] for piece in pieces]
        columns[name] = ak.concatenate(parts) if isinstance(first, ak.Array) else np.concatenate(parts)
    return columns


def _event_scalars(config, chunk, pythia_weight, weight_sum, xsec_fb):
    """Per-event scalars; ``pythia_weight`` of the accepted events, ``weight_sum`` over all generated.

    ``weight`` is the cross section each event stands for (fb): xsec * w / sum(w over generated
    events), so that summing it over any selection gives that selection's cross section, biased
    or not; ``acceptance`` is the weighted fraction of generated events that passed.
    """
    n_accepted = len(pythia_weight)
    ones = np.ones(n_accepted)
    signal = float(config.is_signal)
    return {
        "event_id": chunk * config.events_per_file + np.arange(n_accepted, dtype=np.int64),
        "gen_seed": np.full(n_accepted, config.seed, dtype=np.int64),  # with process and event_id: which events
        "process": np.full(n_accepted, PROCESS_CODES[config.process], dtype=np.int32),
        "phase_space": np.full(n_accepted, config.phase_space, dtype=np.int32),
        "label": np.full(n_accepted, int(config.is_signal), dtype=np.int32),
        # sum of weights = xsec * acceptance
        "weight": xsec_fb * pythia_weight / weight_sum,
        "mH": (ones * (config.mH if config.is_signal else 0.0)).astype(np.float32),
        "is_signal": (ones * signal).astype(np.float32),
        "is_background": (ones * (1.0 - signal)).astype(np.float32),
        "xsec_fb": ones * xsec_fb,
        "acceptance": ones * (pythia_weight.sum() / weight_sum),
    }


def _versions():
    packages = ("pythia8mc", "fastjet", "uproot", "awkward", "numpy")
    return {name: importlib.metadata.version(name) for name in packages}


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
