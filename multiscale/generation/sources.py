"""Where the events of a chunk come from: one of Pythia's built-in processes, a Les Houches file
(MadGraph, POWHEG, ...) showered and hadronised by Pythia, or an already showered HepMC3 file.

Every source hands the event loop of run.py batches of particles (``EventBatch``) with their event
weights; the reconstruction, preselection, b-tagging and writer that follow are the same for all.
The input files are checked before anything is generated (:func:`prepare_inputs`,
:func:`inspect_lhe`, :func:`inspect_hepmc`): a missing, foreign or truncated file, beams that
differ between files, or a merged sample whose merging cannot be set up (merging.py) stop the run
with one line naming the file. A chunk of an input run is a range of a file's events
(slices.py); a Les Houches file is showered with the merging its MadGraph header says it was
made for, and the cross section is then Pythia's after the merging veto.
"""

import bz2
import ctypes
import gzip
import lzma
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import awkward as ak
import numpy as np

from . import slices
from .event_record import EventBatch, from_pythia_batch, offsets_of
from .hf_filter import HeavyFlavourFilter
from .merging import Merging, read_madgraph_header
from .merging import plan as plan_merging
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
        self.failure_run = self.n_failed = 0

    @classmethod
    def builtin(cls, config, seed):
        hf_filter = HeavyFlavourFilter(config.hf_filter) if config.hf_filter else None
        pythia = make_pythia(config.process, seed, config.mH, config.pthat_min, config.pthat_bias, hf_filter)
        if hf_filter is not None:
            hf_filter.attach(pythia)
        return cls(pythia, f"{config.process}, seed {seed}", hf_filter=hf_filter)

    def next(self, n):
        raw = self.pythia.nextBatch(n, errorMode="none")
        ok = ~ak.to_numpy(ak.is_none(raw))
        exhausted = self.lhe is not None and self.pythia.infoPython().atEndOfFile()
        n_read = len(ok)
        if exhausted:  # the entries after the file's last event are no events
            n_read = int(np.flatnonzero(ok)[-1]) + 1 if ok.any() else 0
            ok = ok[:n_read]
        self.n_failed += int((~ok).sum())
        for success in ok:
            self.failure_run = 0 if success else self.failure_run + 1
            if self.failure_run >= MAX_CONSECUTIVE_FAILURES:
                raise GenerationError(f"Pythia failed {self.failure_run} times in a row ({self.where})")
        if not ok.any():
            return Batch(None, np.zeros(0), n_read, exhausted)
        events = ak.drop_none(raw[:n_read])  # failed events come back as None
        weights = ak.to_numpy(events.info.weights[:, 0]).astype(np.float64)
        events, weights, n_read = self._kept(events, weights, n_read)
        if not len(weights):
            return Batch(None, np.zeros(0), n_read, exhausted)
        return Batch(from_pythia_batch(events), weights, n_read, exhausted)

    def _kept(self, events, weights, n_read):
        """The events of a batch to reconstruct: all of Pythia's own processes."""
        return events, weights, n_read

    def cross_section_fb(self):
        """Pythia's estimate of the generated cross section (sigmaGen)."""
        return cross_section_fb(self.pythia)

    def cross_section_source(self):
        return "pythia sigmaGen"

    def particle_data(self):
        return self.pythia.particleData

    def summary(self):
        info = self.pythia.infoPython()
        summary = {"sigma_gen_error_fb": info.sigmaErr() * 1e12}
        if self.hf_filter is not None:
            summary["hf_filter"] = self.hf_filter.summary()
        return summary

    def close(self):
        pass


class LesHouchesSource(PythiaSource):
    """The events of a Les Houches file (or of a slice of it), showered by Pythia with the merging
    the file gets (``lhe.merging``, merging.py): MLM and FxFx in Pythia's MadGraph matching hook,
    CKKW-L in Pythia's own merging."""

    def __init__(self, lhe, seed, path=None, slice_file=None, n_input=None):
        """Showers ``lhe`` (a LesHouchesFile) or the slice of it at ``path`` (``n_input`` events);
        ``slice_file`` is deleted at close()."""
        self.merging = lhe.merging or Merging("none")
        hooks = None
        if self.merging.jet_matching_hook:
            import pythia8mc

            hooks = pythia8mc.JetMatchingMadgraph()
        with _quiet_if(self.merging.merged):  # the merging's tables (the whole run card, ...): in the sidecar
            pythia = make_lhe_pythia(path or lhe.path, seed, self.merging.settings, hooks)
        super().__init__(pythia, f"{lhe.path}, seed {seed}", lhe)
        self.slice_file, self.n_input = slice_file, n_input or lhe.n_events
        self.n_zero_weight = 0  # events the merging gave weight 0 (CKKW-L's vetoes): dropped
        self.jet_weights = {}  # matrix-element jets -> [events, sum of weights] of the events kept
        self.closed = None  # what close() kept of Pythia's figures

    def _kept(self, events, weights, n_read):
        """A merging veto may leave an event with weight 0 (CKKW-L): it stands for nothing, and would
        train a network as much as any other event: dropped, and counted. The others are counted by
        matrix-element jet multiplicity."""
        nonzero = weights != 0
        dropped = int((~nonzero).sum())
        if dropped:
            self.n_zero_weight += dropped
            events, weights, n_read = events[nonzero], weights[nonzero], n_read - dropped
        self._count_jets(events, weights)
        return events, weights, n_read

    def _count_jets(self, events, weights):
        """Events and weights by the number of light partons of the hard process (its outgoing partons
        whose mother is the first incoming one, Pythia entry 3): the matrix-element jet multiplicity."""
        prt = events.prt
        hard = (abs(prt.status) == 23) & (prt.mother1 == 3) & ((abs(prt.id) <= 4) | (prt.id == 21))
        jets = ak.to_numpy(ak.sum(hard, axis=1))
        for n in np.unique(jets):
            entry = self.jet_weights.setdefault(int(n), [0, 0.0])
            entry[0] += int((jets == n).sum())
            entry[1] += float(weights[jets == n].sum())

    def cross_section_fb(self):
        """The cross section the events stand for: after a merging, Pythia's estimate of what the
        merging kept (sigmaGen: XSECUP x accepted / tried, weighted); else the file's (sum of its
        processes' XSECUP), else Pythia's estimate."""
        if self.closed is not None:
            return self.closed["xsec"]
        if self.lhe.xsec_pb is not None and not self.merging.merged:
            return self.lhe.xsec_pb * PB_TO_FB
        return cross_section_fb(self.pythia)

    def cross_section_source(self):
        if self.merging.merged:
            return f"pythia sigmaGen after the {self.merging.scheme} merging of {self.lhe.path}"
        if self.lhe.xsec_pb is not None:
            return f"<init> block of {self.lhe.path}"
        return "pythia sigmaGen"

    def particle_data(self):
        """A copy (the file's SLHA particles included): Pythia goes at close()."""
        import pythia8mc

        return pythia8mc.ParticleData(self.pythia.particleData)

    def summary(self):
        if self.closed is not None:
            return self.closed["summary"]
        error = self.pythia.infoPython().sigmaErr() * 1e12 if self.merging.merged else None
        return {"sigma_gen_error_fb": error, "merging": self._merging_summary()}

    def _merging_summary(self):
        """What the merging did: its settings, the cross section before (XSECUP) and after it, the
        events read, kept and vetoed, and the cross section by matrix-element jet multiplicity."""
        xsec = self.cross_section_fb()
        total = sum(weight for _, weight in self.jet_weights.values())
        before = None if self.lhe.xsec_pb is None else self.lhe.xsec_pb * PB_TO_FB
        n_kept = sum(events for events, _ in self.jet_weights.values())
        return {
            "scheme": self.merging.scheme, **self.merging.details, "pythia_settings": list(self.merging.settings),
            "xsec_before_fb": before, "xsec_after_fb": xsec,
            "efficiency": xsec / before if before and self.merging.merged else None,
            # vetoed: given weight 0, or never returned by Pythia (MLM, FxFx, most of CKKW-L's)
            "n_input_events": self.n_input, "n_kept": n_kept, "n_vetoed": self.n_input - n_kept - self.n_failed,
            "n_zero_weight_dropped": self.n_zero_weight,
            "me_jet_multiplicity": {str(n): {"events": events, "xsec_fb": xsec * weight / total if total else None}
                                    for n, (events, weight) in sorted(self.jet_weights.items())},
        }

    def close(self):
        if self.closed is None:
            # what the run asks after close(), taken while Pythia lives; then Pythia goes, with its
            # matching hook, which prints its statistics when destroyed
            self.closed = {"xsec": self.cross_section_fb(), "summary": self.summary()}
            with _quiet_if(self.merging.merged):
                self.pythia = None
        if self.slice_file is not None:
            Path(self.slice_file).unlink(missing_ok=True)


@contextmanager
def _quiet_if(condition):
    """Standard output (C++'s too) to /dev/null while ``condition``."""
    if not condition:
        yield
        return
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        ctypes.CDLL(None).fflush(None)  # C++'s cout writes through C's stdout buffer: empty it here, not later
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


@dataclass(frozen=True)
class LesHouchesFile:
    """What the <init> block and a scan of a Les Houches file say."""

    path: str
    beam_ids: tuple  # PDG ids of the two beams
    beam_energies_gev: tuple
    weight_strategy: int  # IDWTUP: +-3 unweighted, +-4 weighted events
    xsec_pb: float | None  # sum of XSECUP over the processes
    n_events: int
    n_negative_weights: int = 0  # events with XWGTUP < 0 (NLO)
    madgraph: object = None  # merging.MadGraphHeader of the header's MadGraph cards, None without
    merging: Merging | None = None  # what Pythia applies (merging.plan), set before the run


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
    header, seen_init, event_line, n_negative = [], False, False, 0
    try:
        with _open_text(path) as text:
            first = text.readline()
            if "<LesHouchesEvents" not in first:
                raise GenerationError(f"{path}: not a Les Houches file (it does not start with <LesHouchesEvents>)")
            in_init = False
            for line in text:
                stripped = line.strip()
                if stripped.startswith("<init"):
                    in_init = seen_init = True
                elif stripped.startswith("</init"):
                    in_init = False
                elif in_init and stripped and not stripped.startswith(("#", "<")):
                    init.append(stripped)
                elif not seen_init:
                    header.append(line)
                elif event_line and stripped:  # NUP IDPRUP XWGTUP ...: the weight's sign
                    n_negative += _negative_weight(stripped)
                    event_line = False
                opens = slices.is_lhe_event_start(stripped)
                event_line |= opens
                n_open += opens
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
    return LesHouchesFile(path, beam_ids, energies, strategy, xsec if xsec > 0 else None, n_open, n_negative,
                          read_madgraph_header("".join(header)))


def _negative_weight(event_line):
    try:
        return float(event_line.split()[2]) < 0
    except (IndexError, ValueError):
        return False


# --- HepMC3: already showered events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HepMCFile:
    path: str
    beam_energies_gev: tuple
    xsec_pb: float | None  # the last event's GenCrossSection (an estimate refined during the run)
    n_events: int
    has_hadron_record: bool  # decayed hadrons are stored: b-tag labels can be made
    n_negative_weights: int = 0  # events whose first weight is negative (NLO)


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
    n_events, beams, xsec, hadrons, n_negative = 0, None, None, False, 0
    try:
        for event in _read_hepmc(path):
            unit = _momentum_unit(event)
            if beams is None:
                beams = _beam_energies(event, unit)
            if event.cross_section is not None:
                xsec = float(event.cross_section.xsec())
            hadrons = hadrons or any(p.status == 2 and abs(p.pid) > 100 for p in event.particles)
            n_negative += bool(len(event.weights)) and event.weights[0] < 0
            n_events += 1
    except Exception as error:  # pyhepmc raises IOError, RuntimeError, ... for files it cannot parse
        raise GenerationError(f"{path}: not a readable HepMC3 file ({error})") from error
    if n_events == 0:
        raise GenerationError(f"{path}: holds no events")
    return HepMCFile(path, beams, xsec if xsec and xsec > 0 else None, n_events, hadrons, n_negative)


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

    def __init__(self, hepmc, path=None, slice_file=None):
        """Reads ``hepmc`` (a HepMCFile) or the slice of it at ``path``; ``slice_file`` is deleted at close()."""
        self.hepmc, self.slice_file = hepmc, slice_file
        self.events = _read_hepmc(path or hepmc.path)

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
        if self.slice_file is not None:
            Path(self.slice_file).unlink(missing_ok=True)


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


def prepare_inputs(config):
    """(config with the number of events of each input file, the checked input files, each Les Houches
    file with the merging it gets); (config, None) for Pythia's own processes. The input files are
    checked (readable, complete, same beams, merging determined) before any event is made."""
    if not config.inputs:
        return config, None
    inputs = inspect_inputs(config.input_format, config.inputs, not config.no_btag_labels, config.xsec_fb is not None)
    if config.input_format == "lhe":
        inputs = [replace(item, merging=plan_merging(item.path, item.madgraph, config.merging, config.merging_scale,
                                                     config.merging_process)) for item in inputs]
    counts = tuple(item.n_events for item in inputs)
    if config.events > sum(counts):
        raise GenerationError(f"--events {config.events}: the input files hold {sum(counts)} events")
    return replace(config, input_events=counts), inputs


def open_source(config, chunk, seed, inputs):
    """The source of chunk ``chunk``: built-in Pythia, or its range of events of a checked input file
    (``config.input_ranges()``), read from a slice file when the range is not the whole file."""
    if config.input_format == "pythia":
        return PythiaSource.builtin(config, seed)
    index, start, stop = config.input_ranges()[chunk]
    item = inputs[index]
    path = slice_file = None
    if (start, stop) != (0, item.n_events):
        target = slices.slice_path(config.outdir, config.file_stem(chunk))
        with _open_text(item.path) as text:
            path = slice_file = slices.write_slice(config.input_format, item.path, text, start, stop, target)
    try:
        if config.input_format == "lhe":
            return LesHouchesSource(item, seed, path, slice_file, stop - start)
        return HepMCSource(item, path, slice_file)
    except BaseException:
        if slice_file is not None:
            Path(slice_file).unlink(missing_ok=True)
        raise


def chunk_input(config, chunk, inputs):
    """(input file, (first event, end event)) of chunk ``chunk`` of an LHE or HepMC3 run."""
    index, start, stop = config.input_ranges()[chunk]
    return inputs[index], (start, stop)


def input_summary(item, event_range=None):
    """The JSON sidecar's record of an input file (and of the chunk's range of its events)."""
    fields = {"file": str(Path(item.path).resolve()), "beam_energies_gev": list(item.beam_energies_gev),
              "xsec_pb": item.xsec_pb, "n_events": item.n_events, "n_negative_weights": item.n_negative_weights}
    if event_range is not None:
        fields["event_range"] = list(event_range)
    if isinstance(item, LesHouchesFile):
        fields.update(beam_ids=list(item.beam_ids), weight_strategy=item.weight_strategy)
    else:
        fields.update(has_hadron_record=item.has_hadron_record)
    return fields

