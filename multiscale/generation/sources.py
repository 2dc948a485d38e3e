"""Where the events of a chunk come from: one of Pythia's built-in processes, a Les Houches file
(MadGraph, POWHEG, ...) showered and hadronised by Pythia, or an already showered HepMC3 file.

Every source hands the event loop of run.py batches of particles (``EventBatch``) with their event
weights; the reconstruction, preselection, b-tagging and writer that follow are the same for all.
The input files are checked before anything is generated (:func:`inspect_lhe`,
:func:`inspect_hepmc`): a missing, foreign or truncated file, or beams that differ between files,
stop the run with one line naming the file.
"""

import bz2
import gzip
import lzma
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np

from .event_record import EventBatch, from_pythia_batch, offsets_of
from .hf_filter import HeavyFlavourFilter
from .pythia_setup import GenerationError, cross_section_fb, make_lhe_pythia, make_pythia

MAX_CONSECUTIVE_FAILURES = 100
PB_TO_FB = 1e3
MEV_TO_GEV = 1e-3


@dataclass
class Batch:
    particles: EventBatch | None  # the events that came out (None: none did)
    weights: np.ndarray  # their event weights
    n_read: int  # events taken from the source, failed ones included
    exhausted: bool  # the source has no more events


# --- Pythia: built-in processes and Les Houches files ------------------------------------------------------------


class PythiaSource:
    """Events from a Pythia instance: a built-in process (never exhausted) or a Les Houches file."""

    def __init__(self, pythia, where, lhe=None, hf_filter=None):
        self.pythia, self.where, self.lhe = pythia, where, lhe
        self.hf_filter = hf_filter  # kept here: Pythia holds only a pointer to the hook
        self.failure_run = 0

    @classmethod
    def builtin(cls, config, seed):
        hf_filter = HeavyFlavourFilter(config.hf_filter) if config.hf_filter else None
        pythia = make_pythia(config.process, seed, config.mH, config.pthat_min, config.pthat_bias, hf_filter)
        return cls(pythia, f"{config.process}, seed {seed}", hf_filter=hf_filter)

    @classmethod
    def les_houches(cls, lhe, seed):
        return cls(make_lhe_pythia(lhe.path, seed), f"{lhe.path}, seed {seed}", lhe)

    def next(self, n):
        raw = self.pythia.nextBatch(n, errorMode="none")
        ok = ~ak.to_numpy(ak.is_none(raw))
        exhausted = self.lhe is not None and self.pythia.infoPython().atEndOfFile()
        n_read = len(ok)
        if exhausted:  # the entries after the file's last event are no events
            n_read = int(np.flatnonzero(ok)[-1]) + 1 if ok.any() else 0
            ok = ok[:n_read]
        for success in ok:
            self.failure_run = 0 if success else self.failure_run + 1
            if self.failure_run >= MAX_CONSECUTIVE_FAILURES:
                raise GenerationError(f"Pythia failed {self.failure_run} times in a row ({self.where})")
        if not ok.any():
            return Batch(None, np.zeros(0), n_read, exhausted)
        events = ak.drop_none(raw[:n_read])  # failed events come back as None
        weights = ak.to_numpy(events.info.weights[:, 0]).astype(np.float64)
        return Batch(from_pythia_batch(events), weights, n_read, exhausted)

    def cross_section_fb(self):
        """The cross section the events stand for: the Les Houches file's (sum of its processes'
        XSECUP), else Pythia's estimate (sigmaGen)."""
        if self.lhe is not None and self.lhe.xsec_pb is not None:
            return self.lhe.xsec_pb * PB_TO_FB
        return cross_section_fb(self.pythia)

    def cross_section_source(self):
        if self.lhe is not None and self.lhe.xsec_pb is not None:
            return f"<init> block of {self.lhe.path}"
        return "pythia sigmaGen"

    def particle_data(self):
        return self.pythia.particleData

    def summary(self):
        info = self.pythia.infoPython()
        summary = {"sigma_gen_error_fb": info.sigmaErr() * 1e12 if self.lhe is None else None}
        if self.hf_filter is not None:
            summary["hf_filter"] = self.hf_filter.summary()
        return summary

    def close(self):
        pass


@dataclass(frozen=True)
class LesHouchesFile:
    """What the <init> block and a scan of a Les Houches file say."""

    path: str
    beam_ids: tuple  # PDG ids of the two beams
    beam_energies_gev: tuple
    weight_strategy: int  # IDWTUP: +-3 unweighted, +-4 weighted events
    xsec_pb: float | None  # sum of XSECUP over the processes
    n_events: int


_COMPRESSED = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ": lzma.open}


def _open_text(path):
    """A text file, gzip, bzip2 or xz compressed or not (told by its first bytes, not its name)."""
    with open(path, "rb") as handle:
        head = handle.read(6)
    opener = next((opener for magic, opener in _COMPRESSED.items() if head.startswith(magic)), open)
    return opener(path, "rt", errors="replace")


def inspect_lhe(path):
    """Check that ``path`` is a complete Les Houches file and read its <init> block."""
    path = str(path)
    if not Path(path).is_file():
        raise GenerationError(f"{path}: no such file")
    init, n_open, n_closed, closed_file = [], 0, 0, False
    try:
        with _open_text(path) as text:
            first = text.readline()
            if "<LesHouchesEvents" not in first:
                raise GenerationError(f"{path}: not a Les Houches file (it does not start with <LesHouchesEvents>)")
            in_init = False
            for line in text:
                stripped = line.strip()
                if stripped.startswith("<init"):
                    in_init = True
                elif stripped.startswith("</init"):
                    in_init = False
                elif in_init and stripped and not stripped.startswith(("#", "<")):
                    init.append(stripped)
                n_open += stripped.startswith("<event")
                n_closed += stripped.startswith("</event")
                closed_file |= stripped.startswith("</LesHouchesEvents")
    except (OSError, EOFError) as error:  # a gzip stream cut short, a directory, ...
        raise GenerationError(f"{path}: cannot be read to its end ({error}): truncated?") from error
    if n_open != n_closed or not closed_file:
        raise GenerationError(f"{path}: truncated: {n_open} <event> blocks opened, {n_closed} closed"
                              f"{'' if closed_file else ', no closing </LesHouchesEvents>'}")
    if not init:
        raise GenerationError(f"{path}: no <init> block: not a Les Houches event file")
    try:
        head = init[0].split()
        beam_ids, energies = (int(head[0]), int(head[1])), (float(head[2]), float(head[3]))
        strategy, n_processes = int(head[8]), int(head[9])
        xsec = sum(float(line.split()[0]) for line in init[1:1 + n_processes])
    except (IndexError, ValueError) as error:
        raise GenerationError(f"{path}: unreadable <init> block ({error})") from error
    if n_open == 0:
        raise GenerationError(f"{path}: holds no events")
    return LesHouchesFile(path, beam_ids, energies, strategy, xsec if xsec > 0 else None, n_open)


# --- HepMC3: already showered events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HepMCFile:
    path: str
    beam_energies_gev: tuple
    xsec_pb: float | None  # the last event's GenCrossSection (an estimate refined during the run)
    n_events: int
    has_hadron_record: bool  # decayed hadrons are stored: b-tag labels can be made


def _read_hepmc(path):
    import pyhepmc

    with pyhepmc.open(path) as reader:
        yield from reader


def _beam_energies(event, unit):
    beams = [p for p in event.particles if p.status == 4] or [p for p in event.particles if not p.parents][:2]
    return tuple(sorted(round(p.momentum.e * unit, 6) for p in beams[:2]))


def _momentum_unit(event):
    return MEV_TO_GEV if str(event.momentum_unit).endswith("MEV") else 1.0


def inspect_hepmc(path):
    """Check that ``path`` is a readable HepMC3 file and read what the run needs from it."""
    path = str(path)
    if not Path(path).is_file():
        raise GenerationError(f"{path}: no such file")
    # the text checks first: HepMC3's reader prints its own errors for a foreign or cut file
    first, last = _first_and_last_lines(path)
    if not first.startswith("HepMC::"):
        raise GenerationError(f"{path}: not a HepMC3 ASCII file (it does not start with a HepMC:: header)")
    if "END_EVENT_LISTING" not in last:
        raise GenerationError(f"{path}: truncated: the last event is cut (no HepMC3 END_EVENT_LISTING line)")
    n_events, beams, xsec, hadrons = 0, None, None, False
    try:
        for event in _read_hepmc(path):
            unit = _momentum_unit(event)
            if beams is None:
                beams = _beam_energies(event, unit)
            if event.cross_section is not None:
                xsec = float(event.cross_section.xsec())
            hadrons = hadrons or any(p.status == 2 and abs(p.pid) > 100 for p in event.particles)
            n_events += 1
    except Exception as error:  # pyhepmc raises IOError, RuntimeError, ... for files it cannot parse
        raise GenerationError(f"{path}: not a readable HepMC3 file ({error})") from error
    if n_events == 0:
        raise GenerationError(f"{path}: holds no events")
    return HepMCFile(path, beams, xsec if xsec and xsec > 0 else None, n_events, hadrons)


def _first_and_last_lines(path):
    """The first and the last non-empty line of a (possibly gzipped) text file ("" for a binary one)."""
    first = last = ""
    try:
        with _open_text(path) as text:
            for line in text:
                if line.strip():
                    first = first or line.strip()
                    last = line.strip()
    except (OSError, EOFError, UnicodeDecodeError):
        return "", ""
    return first, last


class HepMCSource:
    """Events of a HepMC3 file, turned into the flat particle arrays of the reconstruction."""

    def __init__(self, hepmc):
        self.hepmc = hepmc
        self.events = _read_hepmc(hepmc.path)

    def next(self, n):
        records = []
        for event in self.events:
            records.append(event)
            if len(records) == n:
                break
        exhausted = len(records) < n
        if not records:
            return Batch(None, np.zeros(0), 0, True)
        weights = np.array([event.weights[0] if len(event.weights) else 1.0 for event in records], dtype=np.float64)
        return Batch(_event_batch(records), weights, len(records), exhausted)

    def cross_section_fb(self):
        return None if self.hepmc.xsec_pb is None else self.hepmc.xsec_pb * PB_TO_FB

    def cross_section_source(self):
        return f"GenCrossSection of {self.hepmc.path}"

    def particle_data(self):
        from .pythia_setup import particle_data

        return particle_data()

    def summary(self):
        return {}

    def close(self):
        self.events.close()


def _event_batch(events):
    """Flat arrays of HepMC3 events in the conventions of event_record.EventBatch: status > 0 for
    final-state particles (HepMC status 1) only, mother1 the flat index of the first parent."""
    counts = np.array([len(event.particles) for event in events], dtype=np.int64)
    offsets = offsets_of(counts)
    pid, status, mother1, momenta = [], [], [], []
    for event, offset in zip(events, offsets):
        unit = _momentum_unit(event)
        for particle in event.particles:
            pid.append(particle.pid)
            status.append(1 if particle.status == 1 else -max(abs(particle.status), 2))
            parents = particle.parents
            mother1.append(offset + parents[0].id - 1 if parents else -1)  # ids count from 1
            m = particle.momentum
            momenta.append((m.px * unit, m.py * unit, m.pz * unit, m.e * unit))
    momenta = np.asarray(momenta, dtype=np.float64).reshape(-1, 4)
    return EventBatch(
        n_events=len(events), counts=counts, offsets=offsets, pid=np.asarray(pid, dtype=np.int32),
        status=np.asarray(status, dtype=np.int32), mother1=np.asarray(mother1, dtype=np.int64),
        px=momenta[:, 0], py=momenta[:, 1], pz=momenta[:, 2], energy=momenta[:, 3],
    )


# --- the inputs of a run --------------------------------------------------------------------------------------------


def inspect_inputs(kind, paths, btag_labels=True, xsec_given=False):
    """The checked input files of a run (``kind`` "lhe" or "hepmc"); beams must agree between them,
    HepMC3 files must carry a cross section unless ``xsec_given`` (--xsec-fb) and their records the
    decayed hadrons unless ``btag_labels`` is False."""
    inspect = inspect_lhe if kind == "lhe" else inspect_hepmc
    files = [inspect(path) for path in paths]
    for item in files:
        if kind == "hepmc" and item.xsec_pb is None and not xsec_given:
            raise GenerationError(f"{item.path}: holds no cross section (no GenCrossSection); pass --xsec-fb")
        if btag_labels and not getattr(item, "has_hadron_record", True):
            raise GenerationError(
                f"{item.path}: its event record holds no decayed hadrons, so the b-tag labels (B and C hadrons "
                "near each jet) cannot be made; pass --no-btag-labels to proceed with every jet labelled light"
            )
    first = files[0]
    for other in files[1:]:
        if sorted(other.beam_energies_gev) != sorted(first.beam_energies_gev):
            raise GenerationError(
                f"{other.path}: beam energies {other.beam_energies_gev} GeV differ from those of {first.path} "
                f"{first.beam_energies_gev} GeV: one run takes files of one collider setting"
            )
    return files


def open_source(config, chunk, seed, inputs):
    """The source of chunk ``chunk``: built-in Pythia, or the checked input file ``inputs[chunk]``."""
    if config.input_format == "pythia":
        return PythiaSource.builtin(config, seed)
    item = inputs[chunk]
    return PythiaSource.les_houches(item, seed) if config.input_format == "lhe" else HepMCSource(item)


def input_summary(item):
    """The JSON sidecar's record of an input file."""
    fields = {"file": str(Path(item.path).resolve()), "beam_energies_gev": list(item.beam_energies_gev),
              "xsec_pb": item.xsec_pb, "n_events": item.n_events}
    if isinstance(item, LesHouchesFile):
        fields.update(beam_ids=list(item.beam_ids), weight_strategy=item.weight_strategy)
    else:
        fields.update(has_hadron_record=item.has_hadron_record)
    return fields

