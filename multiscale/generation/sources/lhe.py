"""Events of a Les Houches file (MadGraph, POWHEG, ...) or of a slice of it, showered and hadronised by
Pythia with the merging the file was made for (merging.py)."""

import ctypes
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import awkward as ak
import numpy as np

from ..merging import Merging
from ..pythia_setup import cross_section_fb, make_lhe_pythia
from .batch import PB_TO_FB
from .pythia import PythiaSource

PYTHIA_FAILED = "Pythia could not process it"


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
