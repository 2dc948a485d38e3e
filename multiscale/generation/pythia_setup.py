"""Pythia 8 process cards and generator construction.

Each process gets a short list of ``readString`` settings on top of a common pp @ 14 TeV block.
The signal is the heavy CP-even scalar H (PDG 35) of Pythia's BSM Higgs sector, produced in
gluon fusion and forced into H -> hh -> (bb)(bb).
"""

import functools

import pythia8mc

from ..definitions import BENCHMARK_MASS

SQRT_S_GEV = 14000.0
H_WIDTH_FRACTION = 0.01  # narrow H: Pythia's own width at 1 TeV (~765 GeV) would smear the peak away
MAX_SEED = 900_000_000  # Pythia's Random:seed upper bound
PTHAT_MIN = 300.0  # GeV, PhaseSpace:pTHatMin of qcd and ttbar unless told otherwise (--pthat-min)

OUTPUT_SETTINGS = ("Print:quiet = on", "Next:numberCount = 0", "Random:setSeed = on")
COMMON_SETTINGS = (f"Beams:eCM = {SQRT_S_GEV}", *OUTPUT_SETTINGS)
LHE_SETTINGS = ("Beams:frameType = 4", "SLHA:verbose = 0", *OUTPUT_SETTINGS)  # 4: beams and process from a Les Houches file


class GenerationError(RuntimeError):
    """Pythia could not be set up or stopped producing events."""


def process_settings(process, m_h=BENCHMARK_MASS, pthat_min=PTHAT_MIN, pthat_bias=0.0):
    """The Pythia settings that define ``process`` (hh4b, qcd or ttbar).

    ``pthat_bias`` > 0 (qcd, ttbar) samples pT-hat with an extra factor (pT-hat / pTHatMin)^pthat_bias
    and gives each event the compensating weight: the steep spectrum's tail, which is what survives
    a boosted selection, then holds many more MC events for the same cross section.
    """
    if process == "hh4b":
        return [
            # useBSM must precede the BSM process switch, else init() fails
            "Higgs:useBSM = on",
            "HiggsBSM:gg2H2 = on",
            f"35:m0 = {m_h}",
            f"35:mWidth = {H_WIDTH_FRACTION * m_h}",
            "35:doForceWidth = on",
            "35:onMode = off",
            "35:onIfMatch = 25 25",
            "25:onMode = off",
            "25:onIfMatch = 5 -5",
        ]
    bias = []
    if pthat_bias > 0:
        bias = [
            "PhaseSpace:bias2Selection = on",
            f"PhaseSpace:bias2SelectionPow = {pthat_bias}",
            f"PhaseSpace:bias2SelectionRef = {pthat_min}",
        ]
    if process == "qcd":
        return ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {pthat_min}", *bias]
    if process == "ttbar":
        return ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on", f"PhaseSpace:pTHatMin = {pthat_min}", *bias]
    raise ValueError(f"unknown process {process!r}")


def make_pythia(process, seed, m_h=BENCHMARK_MASS, pthat_min=PTHAT_MIN, pthat_bias=0.0, user_hooks=None,
                extra_settings=()):
    """A Pythia instance initialised for ``process`` with random seed ``seed``; ``user_hooks``
    (hf_filter.HeavyFlavourFilter) installed before init(); ``extra_settings`` (the generator's
    --pythia-setting) read last, so they override the process's."""
    settings = (*COMMON_SETTINGS, *process_settings(process, m_h, pthat_min, pthat_bias), *extra_settings)
    return _initialised(settings, seed, f"process {process!r}", user_hooks)


def make_lhe_pythia(path, seed, extra_settings=(), user_hooks=None):
    """A Pythia instance that showers and hadronises the events of the Les Houches file ``path``
    (plain or gzipped); the beams and their energies come from the file's <init> block.
    ``extra_settings`` and ``user_hooks``: a merging's (merging.py)."""
    settings = (*LHE_SETTINGS, f"Beams:LHEF = {path}", *extra_settings)
    return _initialised(settings, seed, f"the Les Houches file {path}", user_hooks)


# what the generator itself decides (the seeds of the chunks, the beams, hadronising only the kept events)
RESERVED_SETTINGS = ("Random:", "Beams:", "HadronLevel:all")


def check_extra_setting(line):
    """None when Pythia takes ``line`` (a readString setting) and the generator leaves it to the user, else why not."""
    key = line.split("=")[0].strip()
    if "=" not in line or not key:
        return "not of the form 'Key = value'"
    if any(key.lower().startswith(reserved.lower()) for reserved in RESERVED_SETTINGS):
        return f"{key} is set by the generator (its seeds, beams and hadronisation)"
    if not _settings_reader().readString(line):
        return "Pythia does not know it"
    return None


@functools.cache
def _settings_reader():
    """One Pythia instance (never initialised) to ask whether it knows a setting: building one reads its whole
    settings database."""
    return pythia8mc.Pythia("", False)


def _initialised(settings, seed, what, user_hooks=None):
    if not 1 <= seed <= MAX_SEED:  # 0 would mean "seed from the clock"
        raise ValueError(f"Pythia seed {seed} outside [1, {MAX_SEED}]")
    pythia = pythia8mc.Pythia("", False)  # False: no banner
    for line in (*settings, f"Random:seed = {seed}"):
        if not pythia.readString(line):
            raise GenerationError(f"Pythia rejected the setting {line!r}")
    if user_hooks is not None:
        pythia.setUserHooksPtr(user_hooks)
    if not pythia.init():
        raise GenerationError(f"Pythia init() failed for {what} (seed {seed}); check the settings")
    return pythia


def particle_data():
    """Pythia's particle data table (charges), without initialising a process."""
    return pythia8mc.Pythia("", False).particleData


def cross_section_fb(pythia):
    """Pythia's estimate of the generated cross section, converted from mb to fb."""
    return pythia.infoPython().sigmaGen() * 1e12
