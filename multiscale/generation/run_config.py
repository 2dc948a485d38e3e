"""The settings of a generator run (``RunConfig``), its chunks and their seeds.

A run of N accepted events is cut into chunks of at most ``events_per_file`` events; chunk c
becomes one file and is generated with seeds derived from (seed, events_per_file, c) only.
Every default of the generator is written here once (the preselection's in ``definitions.Preselection``,
the b-tagging's in ``btagging.TagEfficiencies``): the command line (cli.py) reads them.
"""

import math
from dataclasses import dataclass, fields

import numpy as np

from ..definitions import BENCHMARK_MASS, Preselection
from ..schema import HF_FILTER_SUFFIX, PHASE_SPACES, SIGNAL_PROCESSES, file_stem
from . import btagging, hf_filter, slices
from .btagging import TagEfficiencies
from .pythia_setup import MAX_SEED, PTHAT_MIN


# The preselection's fields are inherited, flat: the sidecars and manifests record the settings so
# (asdict), and a rerun compares them with the files on disk (manifest.py).
@dataclass(frozen=True, kw_only=True)
class RunConfig(Preselection):
    process: str
    events: int
    outdir: str
    seed: int = 1
    jobs: int = 1
    events_per_file: int = 10000
    mH: float = BENCHMARK_MASS
    pthat_min: float = PTHAT_MIN
    pthat_bias: float = 0.0  # power of the pT-hat biasing (0: unweighted events)
    xsec_fb: float | None = None
    btag_eff: float = TagEfficiencies.b
    ctag_mistag: float = TagEfficiencies.c
    light_mistag: float = TagEfficiencies.light
    input_format: str = "pythia"  # "pythia" (built-in process), "lhe" or "hepmc" (chunks: ranges of the files' events)
    inputs: tuple = ()
    no_btag_labels: bool = False
    merging: str = "auto"  # LHE: "auto" (what the MadGraph header says) or "none" (merging.py)
    merging_scale: float | None = None  # GeV, LHE merging scale when the header has none or to override it
    merging_process: str | None = None  # CKKW-L Merging:Process when the header's cannot be translated
    input_events: tuple = ()  # events of each input file (prepare_inputs): the chunks are ranges of them
    input_sha256: tuple = ()  # content hash of each input file (prepare_inputs): a changed file is another run
    chunks: tuple | None = None  # only these chunks (None: the whole run, then the manifest)
    hf_filter: str | None = None  # "require" or "veto": the heavy-flavour filter (hf_filter.py), built-in processes
    pythia_settings: tuple = ()  # extra Pythia readString lines of a built-in process ("PartonLevel:MPI = off")
    flavour_labelling: str = btagging.LABELLING  # the b-tag labelling rule: files of another rule are another run

    @property
    def phase_space(self):
        return hf_filter.MODES[self.hf_filter] if self.hf_filter else PHASE_SPACES["inclusive"]

    @property
    def is_signal(self):
        return self.process in SIGNAL_PROCESSES

    @property
    def n_chunks(self):
        return len(self.input_ranges()) if self.inputs else math.ceil(self.events / self.events_per_file)

    def input_ranges(self):
        """(file index, first event, end event) of each chunk of an LHE or HepMC3 run: the first
        ``events`` events of the files (all when 0) in ranges of ``events_per_file`` (slices.py)."""
        return slices.event_ranges(self.input_events, self.events_per_file, self.events or None)

    def chunk_events(self, chunk):
        """Accepted events chunk ``chunk`` makes; None: every event of its range of input events is read."""
        if self.inputs:
            return None
        return min(self.events_per_file, self.events - chunk * self.events_per_file)

    def file_stem(self, chunk):
        return file_stem(self.process, self.mH, self.seed, chunk, HF_FILTER_SUFFIX.get(self.hf_filter, ""))

    def selection(self):
        """The run's preselection alone (what the reconstruction applies)."""
        return Preselection(**{field.name: getattr(self, field.name) for field in fields(Preselection)})

    def efficiencies(self):
        return TagEfficiencies(self.btag_eff, self.ctag_mistag, self.light_mistag)


def seed_entropy(seed, chunk, events_per_file):
    """The chunk's seed entropy: events_per_file is in it, as chunk c of another chunking holds
    other events (event_id = c * events_per_file + i), so the same --seed must not repeat them."""
    return [seed, events_per_file, chunk]


def chunk_seeds(seed, chunk, events_per_file=RunConfig.events_per_file):
    """(Pythia seed, numpy seed sequence) of chunk ``chunk``: a pure function of (seed, chunk, events_per_file)."""
    pythia_sequence, tagging_sequence = np.random.SeedSequence(seed_entropy(seed, chunk, events_per_file)).spawn(2)
    pythia_seed = int(pythia_sequence.generate_state(1, np.uint32)[0]) % MAX_SEED + 1
    return pythia_seed, tagging_sequence
