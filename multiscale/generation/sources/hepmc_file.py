"""What a HepMC3 file holds, checked before the run (:func:`inspect_hepmc`): readable to its end, its
beams, cross section and weights, whether its record keeps the decayed hadrons (b-tag labels)."""

import math
from dataclasses import dataclass
from pathlib import Path

from ..pythia_setup import GenerationError
from ..writer import file_sha256
from .hepmc import event_problem, momentum_unit, read_events
from .textfile import open_text


@dataclass(frozen=True)
class HepMCFile:
    path: str
    beam_energies_gev: tuple
    xsec_pb: float | None  # the last event's GenCrossSection (an estimate refined during the run)
    n_events: int  # its events (E lines), those the reader cannot take included
    has_hadron_record: bool  # decayed hadrons are stored: b-tag labels can be made
    n_negative_weights: int = 0  # events whose first weight is negative (NLO)
    xsec_error_pb: float = 0.0
    malformed: tuple = ()  # (event index among those read, why): skipped
    n_unreadable: int = 0  # events the HepMC3 reader drops (cut, fewer particles than their E line says)
    sha256: str = ""
    n_weights: int = 0  # weights per event (an event with fewer: its weight line unreadable, e.g. "W nan")


def _beam_energies(event, unit):
    beams = [p for p in event.particles if p.status == 4] or [p for p in event.particles if not p.parents][:2]
    return tuple(sorted(round(p.momentum.e * unit, 6) for p in beams[:2]))


def inspect_hepmc(path):
    """Check that ``path`` is a readable HepMC3 file and read what the run needs from it."""
    path = str(path)
    if not Path(path).is_file():
        raise GenerationError(f"{path}: no such file")
    # the text checks first: HepMC3's reader prints its own errors for a foreign or cut file
    first, last, n_declared = _text_outline(path)
    if not first.startswith("HepMC::"):
        raise GenerationError(f"{path}: not a HepMC3 ASCII file (it does not start with a HepMC:: header)")
    if "END_EVENT_LISTING" not in last:
        raise GenerationError(f"{path}: truncated: the last event is cut (no HepMC3 END_EVENT_LISTING line)")
    n_events, beams, xsec, error, hadrons, n_negative, malformed = 0, None, None, 0.0, False, 0, []
    try:
        n_weights = max((len(event.weights) for event in read_events(path)), default=0)
        for event in read_events(path):
            problem = event_problem(event, n_weights)
            if problem is not None:
                malformed.append((n_events, problem))
                n_events += 1
                continue
            unit = momentum_unit(event)
            if beams is None:
                beams = _beam_energies(event, unit)
            if event.cross_section is not None:
                xsec, error = float(event.cross_section.xsec()), float(event.cross_section.xsec_err())
            hadrons = hadrons or any(p.status == 2 and abs(p.pid) > 100 for p in event.particles)
            n_negative += bool(len(event.weights)) and event.weights[0] < 0
            n_events += 1
    except Exception as error:  # pyhepmc raises IOError, RuntimeError, ... for files it cannot parse
        raise GenerationError(f"{path}: not a readable HepMC3 file ({error})") from error
    if n_events == len(malformed):
        raise GenerationError(f"{path}: holds no events")
    return HepMCFile(path, beams, xsec if xsec and xsec > 0 else None, max(n_declared, n_events), hadrons, n_negative,
                     xsec_error_pb=error if math.isfinite(error) else 0.0, malformed=tuple(malformed),
                     n_unreadable=max(n_declared - n_events, 0), sha256=file_sha256(path), n_weights=n_weights)


def _text_outline(path):
    """(first non-empty line, last non-empty line, number of event lines ``E ...``) of a (possibly
    compressed) text file; ("", "", 0) for a binary one."""
    first = last = ""
    n_events = 0
    try:
        with open_text(path) as text:
            for line in text:
                if line.strip():
                    first = first or line.strip()
                    last = line.strip()
                    n_events += line.startswith("E ")
    except (OSError, EOFError, UnicodeDecodeError):
        return "", "", 0
    return first, last, n_events
