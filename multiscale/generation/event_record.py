"""Flat numpy view of a batch of Pythia events (from ``Pythia.nextBatch``).

Particles of all events are concatenated into flat arrays; ``offsets[i]`` is the position of event
i's first particle, so a per-event Pythia index ``k`` becomes the flat index ``offsets[i] + k``.
"""

from dataclasses import dataclass

import awkward as ak
import numpy as np

NEUTRINO_IDS = (12, 14, 16)


@dataclass
class EventBatch:
    """Particles of ``n_events`` events, flattened."""

    n_events: int
    counts: np.ndarray  # particles per event
    offsets: np.ndarray  # flat index of each event's first particle
    pid: np.ndarray
    status: np.ndarray
    mother1: np.ndarray  # flat index of the first mother (-1 for none)
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    energy: np.ndarray

    @property
    def event_of(self):
        """The event number of every flat particle."""
        return np.repeat(np.arange(self.n_events), self.counts)

    def is_visible_final(self):
        """Final-state particles a detector could see: everything but neutrinos."""
        return (self.status > 0) & ~np.isin(np.abs(self.pid), NEUTRINO_IDS)


def offsets_of(counts):
    """Index of each event's first particle (or jet) in the flat arrays, from the per-event counts."""
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


def from_pythia_batch(events):
    """Flatten the awkward array returned by ``Pythia.nextBatch`` (failed events dropped first)."""
    prt = events.prt
    counts = ak.to_numpy(ak.num(prt)).astype(np.int64)
    offsets = offsets_of(counts)

    def flat(array, dtype):
        return ak.to_numpy(ak.flatten(array)).astype(dtype)

    mother1 = flat(prt.mother1, np.int64)
    event_offsets = np.repeat(offsets, counts)
    return EventBatch(
        n_events=len(counts),
        counts=counts,
        offsets=offsets,
        pid=flat(prt.id, np.int32),
        status=flat(prt.status, np.int32),
        # Pythia index 0 is the event system, so mother1 == 0 means "no mother"
        mother1=np.where(mother1 > 0, mother1 + event_offsets, -1),
        px=flat(prt.p.px, np.float64),
        py=flat(prt.p.py, np.float64),
        pz=flat(prt.p.pz, np.float64),
        energy=flat(prt.p.e, np.float64),
    )


class ChargeTable:
    """Electric charge by PDG id, read once per id from Pythia's particle data."""

    def __init__(self, particle_data):
        self._particle_data = particle_data
        self._cache = {}

    def __call__(self, pid):
        unique, inverse = np.unique(pid, return_inverse=True)
        charges = np.array([self._lookup(int(i)) for i in unique], dtype=np.float32)
        return charges[inverse].reshape(np.shape(pid))

    def _lookup(self, pid):
        if pid not in self._cache:
            self._cache[pid] = self._particle_data.charge(pid)
        return self._cache[pid]
