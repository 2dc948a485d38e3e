"""Where the events of a chunk come from: one of Pythia's built-in processes, a Les Houches file
(MadGraph, POWHEG, ...) showered and hadronised by Pythia, or an already showered HepMC3 file.

Every source hands the event loop (chunk.py) batches of particles (``Batch``) with their event
weights; the reconstruction, preselection, b-tagging and writer that follow are the same for all.
The input files are checked before anything is generated (:func:`prepare_inputs`,
:func:`inspect_lhe`, :func:`inspect_hepmc`): a missing, foreign or truncated file, beams that
differ between files, or a merged sample whose merging cannot be set up (merging.py) stop the run
with one line naming the file. A chunk of an input run is a range of a file's events
(slices.py); a Les Houches file is showered with the merging its MadGraph header says it was
made for, and the cross section is then Pythia's after the merging veto.

Modules, one job each: ``batch`` (what a source hands the event loop), ``pythia`` (built-in
processes), ``lhe`` (a Les Houches file showered by Pythia), ``hepmc`` (a HepMC3 file), ``lhe_file``
and ``hepmc_file`` (what a file holds, checked before the run), ``inputs`` (a run's input files
together, their sidecar record), ``chunk_source`` (the source of one chunk), ``textfile``.
"""

from .batch import Batch
from .chunk_source import chunk_input, open_source
from .hepmc import UNREADABLE_HEPMC, HepMCSource
from .hepmc_file import HepMCFile, inspect_hepmc
from .inputs import (MAX_SKIPPED_FRACTION, describe_skipped, input_summary, inspect_inputs, prepare_inputs,
                     skipped_summary)
from .lhe import PYTHIA_FAILED, LesHouchesSource
from .lhe_file import LesHouchesFile, inspect_lhe
from .pythia import MAX_CONSECUTIVE_FAILURES, PythiaSource

__all__ = [
    "MAX_CONSECUTIVE_FAILURES", "MAX_SKIPPED_FRACTION", "PYTHIA_FAILED", "UNREADABLE_HEPMC", "Batch", "HepMCFile",
    "HepMCSource", "LesHouchesFile", "LesHouchesSource", "PythiaSource", "chunk_input", "describe_skipped",
    "input_summary", "inspect_hepmc", "inspect_inputs", "inspect_lhe", "open_source", "prepare_inputs",
    "skipped_summary",
]
