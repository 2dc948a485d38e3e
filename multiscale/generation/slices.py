"""Event ranges of LHE and HepMC3 input files, each range one chunk of a run.

A run over input files reads their first ``--events`` events (all when not given), in file order,
cut into ranges of ``--events-per-file`` consecutive events: :func:`event_ranges`. The ranges depend
on these two numbers only, so ``--jobs`` (chunks in parallel) does not change the output. A range
that is not a whole file is read from a slice file (:func:`write_slice`): the file's header, the
range's events and the closing line, in plain text, so that Pythia's and HepMC3's own readers take
it as they take the file. It is written next to the output under a temporary name that the
generator's cleanup removes (``.<chunk stem>.input.<pid>.tmp``).
"""

import os
from pathlib import Path

from .pythia_setup import GenerationError

LHE_END = "</LesHouchesEvents>\n"
HEPMC_END = "HepMC::Asciiv3-END_EVENT_LISTING\n"


def event_ranges(counts, per_chunk, limit=None):
    """[(file index, first event, end event)] of every chunk: the first ``limit`` events (all if None)
    of files holding ``counts`` events, in ranges of at most ``per_chunk`` events."""
    ranges, remaining = [], limit
    for index, count in enumerate(counts):
        if remaining is not None:
            count, remaining = min(count, remaining), remaining - min(count, remaining)
        ranges += [(index, start, min(start + per_chunk, count)) for start in range(0, count, per_chunk)]
    return ranges


def is_lhe_event_start(stripped):
    """An LHE line that opens an event (``<event>`` or ``<event attr=...>``, not ``<eventgroup>``)."""
    return stripped == "<event>" or stripped.startswith("<event ")


def slice_path(outdir, stem):
    return Path(outdir) / f".{stem}.input.{os.getpid()}.tmp"


def write_slice(kind, path, lines, start, stop, target):
    """Write events [start, stop) of the input file ``path`` (``lines``: its text, line by line) to
    ``target`` with the file's header and closing line; ``kind`` "lhe" or "hepmc". Stops reading at
    ``stop``; nothing is left at ``target`` when it fails."""
    writer = _lhe_events if kind == "lhe" else _hepmc_events
    try:
        with open(target, "w") as out:
            out.writelines(writer(lines, start, stop))
    except GenerationError as error:
        Path(target).unlink(missing_ok=True)
        raise GenerationError(f"{path}: {error}") from error
    except BaseException:
        Path(target).unlink(missing_ok=True)
        raise
    return target


def _lhe_events(lines, start, stop):
    index, inside = -1, False  # index: the event being read (-1: the header)
    for line in lines:
        stripped = line.strip()
        if is_lhe_event_start(stripped):
            index, inside = index + 1, True
            if index == stop:
                break
        if index < 0 or (inside and start <= index):
            yield line
        if stripped.startswith("</event"):
            inside = False
            if index == stop - 1:
                break
    if index < stop - 1:
        raise GenerationError(f"the input holds {index + 1} events, fewer than the {stop} of its range")
    yield LHE_END


def _hepmc_events(lines, start, stop):
    index = -1
    for line in lines:
        if line.startswith("E "):
            index += 1
            if index == stop:
                break
        elif line.startswith("HepMC::") and "END_EVENT_LISTING" in line:
            break
        if index < 0 or start <= index:
            yield line
    if index < stop - 1:
        raise GenerationError(f"the input holds {index + 1} events, fewer than the {stop} of its range")
    yield HEPMC_END
