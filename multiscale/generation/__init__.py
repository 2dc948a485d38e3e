"""Offline event generation: Pythia 8 + FastJet -> ntuples following ``multiscale.schema``.

Modules, one job each: ``pythia_setup`` (process cards), ``sources`` (a package: built-in process,
Les Houches or HepMC3 file -> batches of particles; the input files checked), ``merging`` (the merging
a MadGraph file was made for, as Pythia settings), ``slices`` (big input files: event ranges, one chunk
each), ``event_record`` (Pythia batch -> flat arrays), ``clustering`` (FastJet, soft drop,
N-subjettiness, subjets), ``btagging`` (hadron-cone labels, random tags), ``objects`` (the 9
event-object tokens), ``reconstruction`` (one batch -> ntuple columns), ``writer`` (ROOT + JSON
output), ``run_config`` (a run's settings and defaults, its chunks' seeds), ``chunk`` (one chunk: the
event loop, its file and sidecar), ``run`` (a run's chunks, in parallel), ``manifest`` (resuming),
``truth_tagging`` (b-tag configurations as weights), ``cli`` (command lines of tools/generate_events.py
and truth_tag.py).
"""

from .run import RunConfig, generate

__all__ = ["RunConfig", "generate"]
