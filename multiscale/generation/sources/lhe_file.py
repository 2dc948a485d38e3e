"""What a Les Houches file holds, checked before the run (:func:`inspect_lhe`): complete, its <init>
block readable, the events Pythia cannot read named, the MadGraph header that says its merging."""

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import slices
from ..merging import Merging, read_madgraph_header
from ..pythia_setup import GenerationError
from ..writer import file_sha256
from .textfile import open_text


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
        with open_text(path) as text:
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
