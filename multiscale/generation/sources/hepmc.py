"""Events of a HepMC3 file (already showered), or of a slice of it, as the flat particle arrays of the
reconstruction."""

import math
from pathlib import Path

import numpy as np

from ..event_record import EventBatch, offsets_of
from .batch import PB_TO_FB, Batch

MEV_TO_GEV = 1e-3
UNREADABLE_HEPMC = "cut or unreadable (the HepMC3 reader drops it)"


def read_events(path):
    import pyhepmc

    with pyhepmc.open(path) as reader:
        yield from reader


def momentum_unit(event):
    return MEV_TO_GEV if str(event.momentum_unit).endswith("MEV") else 1.0


def event_problem(event, n_weights):
    """Why a HepMC3 event cannot be reconstructed (None if it can): a non-finite or unreadable weight (the
    reader gives no weights for a "W nan" line, where the file's other events have ``n_weights``), or a
    non-finite momentum."""
    if len(event.weights) < n_weights or (len(event.weights) and not math.isfinite(event.weights[0])):
        return "non-finite or unreadable weight"
    momenta = [(p.momentum.px, p.momentum.py, p.momentum.pz, p.momentum.e) for p in event.particles]
    if momenta and not np.isfinite(np.asarray(momenta)).all():
        return "non-finite momentum"
    return None


class HepMCSource:
    """Events of a HepMC3 file, turned into the flat particle arrays of the reconstruction; events with a
    non-finite weight or momentum are skipped and counted (``skipped``)."""

    def __init__(self, hepmc, path=None, slice_file=None, n_input=None):
        """Reads ``hepmc`` (a HepMCFile) or the slice of it at ``path`` (``n_input`` events); ``slice_file``
        is deleted at close()."""
        self.hepmc, self.slice_file = hepmc, slice_file
        self.n_input = hepmc.n_events if n_input is None else n_input
        self.events = read_events(path or hepmc.path)
        self.n_seen, self.skipped = 0, {}

    def next(self, n):
        records = []
        for event in self.events:
            self.n_seen += 1
            problem = event_problem(event, self.hepmc.n_weights)
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
        from ..pythia_setup import particle_data

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
        unit = momentum_unit(event)
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
