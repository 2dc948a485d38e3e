"""What every source hands the event loop (chunk.py): batches of events with their weights."""

from dataclasses import dataclass

import numpy as np

from ..event_record import EventBatch

PB_TO_FB = 1e3  # the input files' cross sections are in pb, the ntuples' in fb


@dataclass
class Batch:
    particles: EventBatch | None  # the events that came out (None: none did)
    weights: np.ndarray  # their event weights
    n_read: int  # events taken from the source, failed ones included
    exhausted: bool  # the source has no more events
