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
import math
import os
import re
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
from .writer import file_sha256

MAX_CONSECUTIVE_FAILURES = 100
PB_TO_FB = 1e3
MEV_TO_GEV = 1e-3
# an input file with more events that cannot be read than this fraction is refused (damaged as a whole?);
# up to it, they are skipped, counted and named on the terminal and in the sidecar
MAX_SKIPPED_FRACTION = 0.01
UNREADABLE_HEPMC = "cut or unreadable (the HepMC3 reader drops it)"
PYTHIA_FAILED = "Pythia could not process it"
# two files of one run whose cross sections differ by more than this many standard deviations (XERRUP,
# the GenCrossSection's error) and this fraction are slices of a process, not parts of one sample
SLICE_SIGMAS, SLICE_FRACTION = 5.0, 1e-3


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

    def skipped_events(self):
        """{why: events} of the input events of the chunk that were not reconstructed (none: Pythia's own)."""
        return {}

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

    def __init__(self, lhe, seed, path=None, slice_file=None, event_range=None):
        """Showers ``lhe`` (a LesHouchesFile) or the slice of it at ``path`` (its events ``event_range``,
        (first, end)); ``slice_file`` is deleted at close()."""
        self.merging = lhe.merging or Merging("none")
        hooks = None
        if self.merging.jet_matching_hook:
            import pythia8mc

            hooks = pythia8mc.JetMatchingMadgraph()
        with _quiet_if(self.merging.merged):  # the merging's tables (the whole run card, ...): in the sidecar
            pythia = make_lhe_pythia(path or lhe.path, seed, self.merging.settings, hooks)
        super().__init__(pythia, f"{lhe.path}, seed {seed}", lhe)
        self.slice_file, self.event_range = slice_file, event_range or (0, lhe.n_events)
        self.n_input = self.event_range[1] - self.event_range[0]
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

    def skipped_events(self):
        """{why: events}: the malformed events of the chunk's range (inspect_lhe), which Pythia skips,
        and the other events Pythia could not process."""
        start, stop = self.event_range
        skipped = {}
        for index, why in self.lhe.malformed:
            if start <= index < stop:
                skipped[why] = skipped.get(why, 0) + 1
        others = self.n_failed - sum(skipped.values())
        if others > 0:
            skipped[PYTHIA_FAILED] = others
        return skipped

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
    xsec_error_pb: float = 0.0  # XERRUP of the processes, added in quadrature
    malformed: tuple = ()  # (event index, why) of the events Pythia cannot read: it skips them
    sha256: str = ""  # of the file's bytes: what a rerun compares


_COMPRESSED = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ": lzma.open}


def _open_text(path):
    """A text file, gzip, bzip2 or xz compressed or not (told by its first bytes, not its name)."""
    with open(path, "rb") as handle:
        head = handle.read(6)
    opener = next((opener for magic, opener in _COMPRESSED.items() if head.startswith(magic)), open)
    return opener(path, "rt", errors="replace")


def _is_tag(stripped, name):
    """``stripped`` opens the element ``name`` exactly (``<init>``, ``<init attr=..>``; not ``<initrwgt>``)."""
    return stripped == f"<{name}>" or stripped.startswith(f"<{name} ")


class _LesHouchesScan:
    """One pass over a Les Houches file: its header (every line before <init>, whatever the order of its
    blocks), the <init> lines, and per event whether Pythia can read it and its matrix-element jets."""

    def __init__(self):
        self.header, self.init = [], []
        self.n_open = self.n_closed = self.n_negative = 0
        self.closed_file = self.seen_init = False
        self.n_init = 0  # <init> blocks: more than one is two files concatenated
        self.malformed = []  # (event index, why)
        self.event_jets, self.nlo_jets = set(), set()  # MadGraph's npNLO attribute of aMC@NLO events
        self._in_init, self._event = False, None

    def line(self, line):
        stripped = line.strip()
        if self._event is not None:
            if stripped.startswith("</event"):
                self._close_event()
            else:
                self._event.append(stripped)
        elif _is_tag(stripped, "init"):
            self._in_init = self.seen_init = True
            self.n_init += 1
        elif stripped.startswith("</init>"):
            self._in_init = False
        elif self._in_init and stripped and not stripped.startswith(("#", "<")):
            self.init.append(stripped)
        elif not self.seen_init:
            self.header.append(line)
        if slices.is_lhe_event_start(stripped):
            self.n_open += 1
            self._event = []
            nlo = re.search(r"npNLO\s*=\s*['\"]\s*(-?\d+)", stripped)
            if nlo is not None:
                self.nlo_jets.add(int(nlo.group(1)))
        self.closed_file |= stripped.startswith("</LesHouchesEvents")

    def _close_event(self):
        self.n_closed += 1
        lines, self._event = [line for line in self._event if line], None
        problem, weight, jets = _lhe_event(lines)
        if problem is not None:
            self.malformed.append((self.n_open - 1, problem))
            return
        self.n_negative += weight < 0
        self.event_jets.add(jets)


def _lhe_event(lines):
    """(why Pythia cannot read it or None, XWGTUP, outgoing light partons of the hard process) of the
    lines of one <event> block: the NUP IDPRUP XWGTUP SCALUP AQEDUP AQCDUP line, then NUP particle lines
    of 13 numbers (ID IST MOTH1 MOTH2 COL1 COL2 PX PY PZ E M VTIM SPIN)."""
    try:
        head = lines[0].split()
        n_particles, weight = int(head[0]), float(head[2])
        [float(value) for value in head[3:6]]
    except (IndexError, ValueError):
        return "unreadable event line (NUP IDPRUP XWGTUP ...)", 0.0, 0
    if not math.isfinite(weight):
        return "non-finite weight XWGTUP", weight, 0
    particles = lines[1:1 + n_particles]
    if len(particles) < n_particles or any(line.startswith(("#", "<")) for line in particles):
        return "fewer particle lines than its NUP", weight, 0
    try:  # all lines at once: a file of millions of events is scanned at about the speed it is read
        table = np.array(" ".join(particles).split(), dtype=np.float64).reshape(n_particles, 13)
    except ValueError:  # a word that is no number, a line of another length
        return "unreadable particle line", weight, 0
    if not np.isfinite(table[:, 6:11]).all():
        return "non-finite momentum or mass", weight, 0
    pid, status, mother1, mother2 = table[:, 0], table[:, 1], table[:, 2], table[:, 3]
    # a matrix-element jet: a light parton out of the two incoming ones (not a decay product)
    light = (np.abs(pid) <= 4) | (pid == 21)
    return None, weight, int(((status == 1) & (mother1 == 1) & (mother2 == 2) & light).sum())


def inspect_lhe(path):
    """Check that ``path`` is a complete Les Houches file and read its <init> block."""
    path = str(path)
    if not Path(path).is_file():
        raise GenerationError(f"{path}: no such file")
    scan = _LesHouchesScan()
    try:
        with _open_text(path) as text:
            first = text.readline()
            if "<LesHouchesEvents" not in first:
                raise GenerationError(f"{path}: not a Les Houches file (it does not start with <LesHouchesEvents>)")
            for line in text:
                scan.line(line)
    except (OSError, EOFError) as error:  # a gzip stream cut short, a directory, ...
        raise GenerationError(f"{path}: cannot be read to its end ({error}): truncated?") from error
    n_open, n_closed, closed_file = scan.n_open, scan.n_closed, scan.closed_file
    if n_open != n_closed or not closed_file:
        raise GenerationError(f"{path}: truncated: {n_open} <event> blocks opened, {n_closed} closed"
                              f"{'' if closed_file else ', no closing </LesHouchesEvents>'}")
    if not scan.init:
        raise GenerationError(f"{path}: no <init> block: not a Les Houches event file")
    if scan.n_init > 1:
        raise GenerationError(f"{path}: holds {scan.n_init} <init> blocks: Les Houches files joined into one (cat a b > c)? "
                              "give them as separate files")
    init = scan.init
    try:
        head = init[0].split()
        beam_ids, energies = (int(head[0]), int(head[1])), (float(head[2]), float(head[3]))
        strategy, n_processes = int(head[8]), int(head[9])
        processes = [line.split() for line in init[1:1 + n_processes]]
        xsec = sum(float(fields[0]) for fields in processes)
        error = math.sqrt(sum(float(fields[1]) ** 2 for fields in processes))
    except (IndexError, ValueError) as error:
        raise GenerationError(f"{path}: unreadable <init> block ({error})") from error
    if n_open == 0:
        raise GenerationError(f"{path}: holds no events")
    madgraph = read_madgraph_header("".join(scan.header))
    if madgraph is not None:  # what the events say, for a header without its process card
        madgraph = replace(madgraph, event_jets=tuple(sorted(scan.nlo_jets or scan.event_jets)),
                           event_nlo=bool(scan.nlo_jets))
    return LesHouchesFile(path, beam_ids, energies, strategy, xsec if xsec > 0 else None, n_open, scan.n_negative,
                          madgraph, xsec_error_pb=error, malformed=tuple(scan.malformed), sha256=file_sha256(path))


# --- HepMC3: already showered events --------------------------------------------------------------------------------


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


def _read_hepmc(path):
    import pyhepmc

    with pyhepmc.open(path) as reader:
        yield from reader


def _beam_energies(event, unit):
    beams = [p for p in event.particles if p.status == 4] or [p for p in event.particles if not p.parents][:2]
    return tuple(sorted(round(p.momentum.e * unit, 6) for p in beams[:2]))


def _momentum_unit(event):
    return MEV_TO_GEV if str(event.momentum_unit).endswith("MEV") else 1.0


def _hepmc_problem(event, n_weights):
    """Why a HepMC3 event cannot be reconstructed (None if it can): a non-finite or unreadable weight (the
    reader gives no weights for a "W nan" line, where the file's other events have ``n_weights``), or a
    non-finite momentum."""
    if len(event.weights) < n_weights or (len(event.weights) and not math.isfinite(event.weights[0])):
        return "non-finite or unreadable weight"
    momenta = [(p.momentum.px, p.momentum.py, p.momentum.pz, p.momentum.e) for p in event.particles]
    if momenta and not np.isfinite(np.asarray(momenta)).all():
        return "non-finite momentum"
    return None


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
        n_weights = max((len(event.weights) for event in _read_hepmc(path)), default=0)
        for event in _read_hepmc(path):
            problem = _hepmc_problem(event, n_weights)
            if problem is not None:
                malformed.append((n_events, problem))
                n_events += 1
                continue
            unit = _momentum_unit(event)
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
        with _open_text(path) as text:
            for line in text:
                if line.strip():
                    first = first or line.strip()
                    last = line.strip()
                    n_events += line.startswith("E ")
    except (OSError, EOFError, UnicodeDecodeError):
        return "", "", 0
    return first, last, n_events


class HepMCSource:
    """Events of a HepMC3 file, turned into the flat particle arrays of the reconstruction; events with a
    non-finite weight or momentum are skipped and counted (``skipped``)."""

    def __init__(self, hepmc, path=None, slice_file=None, n_input=None):
        """Reads ``hepmc`` (a HepMCFile) or the slice of it at ``path`` (``n_input`` events); ``slice_file``
        is deleted at close()."""
        self.hepmc, self.slice_file = hepmc, slice_file
        self.n_input = hepmc.n_events if n_input is None else n_input
        self.events = _read_hepmc(path or hepmc.path)
        self.n_seen, self.skipped = 0, {}

    def next(self, n):
        records = []
        for event in self.events:
            self.n_seen += 1
            problem = _hepmc_problem(event, self.hepmc.n_weights)
            if problem is not None:
                self.skipped[problem] = self.skipped.get(problem, 0) + 1
                continue
            records.append(event)
            if len(records) == n:
                break
        exhausted = len(records) < n
        if not records:
            return Batch(None, np.zeros(0), 0, True)
        weights = np.array([event.weights[0] if len(event.weights) else 1.0 for event in records], dtype=np.float64)
        return Batch(_event_batch(records), weights, len(records), exhausted)

    def skipped_events(self):
        """{why: events} of the chunk's events that were not reconstructed."""
        skipped = dict(self.skipped)
        unreadable = self.n_input - self.n_seen
        if unreadable > 0:
            skipped[UNREADABLE_HEPMC] = unreadable
        return skipped

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
    decayed hadrons unless ``btag_labels`` is False; no file given twice, no file with more unreadable
    events than MAX_SKIPPED_FRACTION, and cross sections that agree (else they are slices) unless
    ``xsec_given``."""
    inspect = inspect_lhe if kind == "lhe" else inspect_hepmc
    files = [inspect(path) for path in paths]
    for item in files:
        _check_skipped(item)
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
    _check_duplicates(files)
    if not xsec_given:
        _check_one_cross_section(files)
    return files


def skipped_summary(item):
    """{why: events} of the events of an input file that cannot be read (they are skipped)."""
    skipped = {}
    for _, why in item.malformed:
        skipped[why] = skipped.get(why, 0) + 1
    if getattr(item, "n_unreadable", 0):
        skipped[UNREADABLE_HEPMC] = item.n_unreadable
    return skipped


def describe_skipped(item):
    """One line: how many events of the file are skipped and why (None when none is)."""
    skipped = skipped_summary(item)
    if not skipped:
        return None
    first = [str(index) for index, _ in item.malformed[:5]]
    where = f" (events {', '.join(first)}{', ...' if len(item.malformed) > 5 else ''})" if first else ""
    reasons = "; ".join(f"{n} {why}" for why, n in skipped.items())
    return f"{item.path}: {sum(skipped.values())} of {item.n_events} events cannot be read and are skipped{where}: {reasons}"


def _check_skipped(item):
    n_skipped = sum(skipped_summary(item).values())
    if n_skipped > MAX_SKIPPED_FRACTION * item.n_events:
        raise GenerationError(f"{describe_skipped(item)}; more than {MAX_SKIPPED_FRACTION:.0%} of the file: damaged? "
                              "repair or regenerate it")


def _check_duplicates(files):
    seen = {}
    for item in files:
        if item.sha256 in seen:
            raise GenerationError(f"{item.path}: the same content as {seen[item.sha256]} (sha256 {item.sha256[:16]}...): "
                                  "its events would be written twice; give each input file once")
        seen[item.sha256] = item.path


def _check_one_cross_section(files):
    """The files of a run are one sample: their cross sections agree within their errors. Slices of a
    process (HT or pT bins) would each need their own normalisation, which a sample does not have."""
    first = files[0]
    for other in files[1:]:
        if first.xsec_pb is None or other.xsec_pb is None:
            continue
        difference = abs(other.xsec_pb - first.xsec_pb)
        tolerance = max(SLICE_SIGMAS * math.hypot(first.xsec_error_pb, other.xsec_error_pb),
                        SLICE_FRACTION * max(first.xsec_pb, other.xsec_pb))
        if difference > tolerance:
            raise GenerationError(
                f"{other.path}: cross section {other.xsec_pb:.6g} pb differs from the {first.xsec_pb:.6g} pb of "
                f"{first.path}: slices of a process (HT or pT bins) are not one sample, whose yield is normalised to "
                "one cross section x acceptance (docs/generation.md); generate each slice in its own run, or pass "
                "--xsec-fb if the files are parts of one sample")


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
    return replace(config, input_events=counts, input_sha256=tuple(item.sha256 for item in inputs)), inputs


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
            return LesHouchesSource(item, seed, path, slice_file, (start, stop))
        return HepMCSource(item, path, slice_file, stop - start)
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
    fields = {"file": str(Path(item.path).resolve()), "sha256": item.sha256,
              "beam_energies_gev": list(item.beam_energies_gev), "xsec_pb": item.xsec_pb,
              "xsec_error_pb": item.xsec_error_pb, "n_events": item.n_events,
              "n_negative_weights": item.n_negative_weights}
    if event_range is not None:
        fields["event_range"] = list(event_range)
    if isinstance(item, LesHouchesFile):
        fields.update(beam_ids=list(item.beam_ids), weight_strategy=item.weight_strategy)
    else:
        fields.update(has_hadron_record=item.has_hadron_record)
    return fields

