"""Events of a Pythia instance: one of Pythia's built-in processes (or, as LesHouchesSource, a Les
Houches file showered by Pythia)."""

import awkward as ak
import numpy as np

from ..event_record import from_pythia_batch
from ..hf_filter import HeavyFlavourFilter
from ..pythia_setup import GenerationError, cross_section_fb, make_pythia
from .batch import Batch

MAX_CONSECUTIVE_FAILURES = 100


class PythiaSource:
    """Events from a Pythia instance: a built-in process (never exhausted) or a Les Houches file."""

    def __init__(self, pythia, where, lhe=None, hf_filter=None):
        self.pythia, self.where, self.lhe = pythia, where, lhe
        self.hf_filter = hf_filter  # kept here: Pythia holds only a pointer to the hook
        self.failure_run = self.n_failed = 0

    @classmethod
    def builtin(cls, config, seed):
        hf_filter = HeavyFlavourFilter(config.hf_filter) if config.hf_filter else None
        pythia = make_pythia(config.process, seed, config.mH, config.pthat_min, config.pthat_bias, hf_filter,
                             config.pythia_settings)
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
