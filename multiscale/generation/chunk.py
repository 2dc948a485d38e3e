"""One chunk of a run: its events read or generated batch by batch, reconstructed and preselected
until it holds its events, then written as ``<stem>.root`` with its ``<stem>.json`` sidecar."""

import importlib.metadata
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np

from ..schema import PROCESS_CODES
from .event_record import ChargeTable
from .pythia_setup import GenerationError
from .reconstruction import reconstruct
from .run_config import chunk_seeds, seed_entropy
from .sources import chunk_input, input_summary, open_source
from .writer import file_sha256, write_json, write_root

MIN_BATCH, MAX_BATCH = 20, 200  # Pythia events per nextBatch call


@dataclass
class ChunkEvents:
    """What the event loop of a chunk made: the accepted events' columns, in pieces, and the counts."""

    pieces: list = field(default_factory=list)
    n_generated: int = 0
    n_accepted: int = 0
    n_failed: int = 0
    weight_sum: float = 0.0  # event weights of the generated events (their number when unweighted)


def generate_chunk(config, chunk, progress=None, inputs=None):
    """Generate (or read), reconstruct and write chunk ``chunk`` of the run; returns its summary dict.
    ``inputs``: the checked input files of an LHE or HepMC3 run (sources.inspect_inputs)."""
    start_time, start_cpu = time.perf_counter(), time.process_time()
    pythia_seed, tagging_sequence = chunk_seeds(config.seed, chunk, config.events_per_file)
    source = open_source(config, chunk, pythia_seed, inputs)
    rng = np.random.default_rng(tagging_sequence)
    try:
        events = collect_events(source, config, rng, config.chunk_events(chunk), progress)
    finally:
        source.close()

    item, event_range = chunk_input(config, chunk, inputs) if inputs else (None, None)
    if events.n_accepted == 0:
        raise GenerationError(_nothing_passed(config, chunk, source, item, event_range, events.n_generated))
    sigma_gen_fb = source.cross_section_fb()
    xsec_fb = config.xsec_fb if config.xsec_fb is not None else sigma_gen_fb  # inspect_inputs checked one exists
    columns = _concatenate(events.pieces)
    pythia_weight = columns.pop("pythia_weight")
    columns.update(_event_scalars(config, chunk, pythia_weight, events.weight_sum, xsec_fb))

    outdir, stem = Path(config.outdir), config.file_stem(chunk)
    write_root(outdir / f"{stem}.root", columns)
    summary = {
        "file": f"{stem}.root",
        "process": config.process,
        "chunk": chunk,
        "seed": config.seed,
        "pythia_seed": pythia_seed,
        "tagging_seed_entropy": seed_entropy(config.seed, chunk, config.events_per_file),
        "settings": asdict(config),
        "versions": _versions(),
        **_cross_section_summary(config, source, xsec_fb, sigma_gen_fb),
        **_event_summary(events, source.skipped_events()),
        "file_sha256": file_sha256(outdir / f"{stem}.root"),  # what a rerun checks the file against
        **_weight_summary(config, columns, pythia_weight, events, xsec_fb),
        **_timing(start_time, start_cpu, events.n_accepted),
    }
    if item is not None:
        summary["source"] = input_summary(item, event_range)
    _write_sidecar(outdir, stem, summary)
    return summary


# ---------------------------------------------------------------------------------------------
# the event loop


def collect_events(source, config, rng, target, progress=None):
    """Batches of ``source`` reconstructed and preselected until ``target`` events are accepted (None:
    until the source is exhausted); ``progress(generated, accepted)`` after each batch."""
    charges = ChargeTable(source.particle_data())
    selection, efficiencies = config.selection(), config.efficiencies()
    events, batch_size = ChunkEvents(), MIN_BATCH
    while target is None or events.n_accepted < target:
        batch = source.next(batch_size)
        n_ok = 0 if batch.particles is None else batch.particles.n_events
        events.n_failed += batch.n_read - n_ok
        if n_ok:
            accepted, columns = reconstruct(batch.particles, charges, selection, efficiencies, rng)
            _add_batch(events, batch, accepted, columns, target, n_ok, progress)
        if batch.exhausted:
            break
        batch_size = _next_batch_size(events, target)
    return events


def _add_batch(events, batch, accepted, columns, target, n_ok, progress):
    """Count a reconstructed batch in ``events`` and keep its accepted events' columns."""
    batch_generated = n_ok
    if target is not None and len(accepted) > target - events.n_accepted:
        # stop at the last event kept: later events of the batch count as not generated
        need = target - events.n_accepted
        columns = {name: values[:need] for name, values in columns.items()}
        batch_generated = int(accepted[need - 1]) + 1
        accepted = accepted[:need]
    events.n_generated += batch_generated
    events.weight_sum += batch.weights[:batch_generated].sum()
    events.n_accepted += len(accepted)
    if columns is not None:
        columns["pythia_weight"] = batch.weights[accepted]
        events.pieces.append(columns)
    if progress is not None:
        progress(batch_generated, len(accepted))


def _next_batch_size(events, target):
    """Sized to what the remaining events need at the acceptance so far; the largest when reading a whole range."""
    if target is None:
        return MAX_BATCH
    acceptance = max(events.n_accepted / max(events.n_generated, 1), 0.01)
    return int(np.clip(1.2 * (target - events.n_accepted) / acceptance, MIN_BATCH, MAX_BATCH))


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


# ---------------------------------------------------------------------------------------------
# the file and its sidecar


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


def _cross_section_summary(config, source, xsec_fb, sigma_gen_fb):
    return {
        "xsec_fb": xsec_fb,
        "xsec_source": "--xsec-fb" if config.xsec_fb is not None else source.cross_section_source(),
        "sigma_gen_fb": sigma_gen_fb,
        **source.summary(),
    }


def _event_summary(events, skipped):
    return {
        "n_generated": events.n_generated,
        "n_accepted": events.n_accepted,
        "n_pythia_failures": events.n_failed,
        # input events not reconstructed, by why (malformed, cut, Pythia failed): docs/generation.md
        "n_skipped_input_events": sum(skipped.values()),
        "skipped_input_events": skipped,
    }


def _weight_summary(config, columns, pythia_weight, events, xsec_fb):
    uniform = np.ptp(pythia_weight) == 0 and config.pthat_bias == 0
    return {
        "acceptance": float(columns["acceptance"][0]),
        "pthat_bias": config.pthat_bias,
        "pythia_weight_sum": events.weight_sum,
        "n_effective": float(pythia_weight.sum() ** 2 / (pythia_weight**2).sum()),
        "n_negative_weights": int((pythia_weight < 0).sum()),  # NLO: signed weights, kept as they are
        # per event when every event weighs the same
        "weight_fb": xsec_fb / events.n_generated if uniform else None,
    }


def _timing(start_time, start_cpu, n_accepted):
    """Wall and CPU time of the chunk; one process per chunk: written events per hour of one core (CPU
    time: not slowed by other jobs)."""
    cpu_time_s = round(time.process_time() - start_cpu, 3)
    return {
        "wall_time_s": round(time.perf_counter() - start_time, 3),
        "cpu_time_s": cpu_time_s,
        "accepted_per_core_hour": round(n_accepted / max(cpu_time_s, 1e-9) * 3600.0, 1),
    }


def _write_sidecar(outdir, stem, summary):
    try:
        write_json(outdir / f"{stem}.json", summary)
    except BaseException:  # e.g. a full disk: a .root without its sidecar is half a chunk
        (outdir / f"{stem}.root").unlink(missing_ok=True)
        raise
