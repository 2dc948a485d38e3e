"""The input files of a run, checked together before anything is generated: each readable and complete
(lhe_file.py, hepmc_file.py), beams that agree, no file twice, few unreadable events, one cross section
(not slices of a process), each Les Houches file with the merging it gets (merging.py); and the record
of an input file in a chunk's sidecar."""

import math
from dataclasses import replace
from pathlib import Path

from ..merging import plan as plan_merging
from ..pythia_setup import GenerationError
from .hepmc import UNREADABLE_HEPMC
from .hepmc_file import inspect_hepmc
from .lhe_file import LesHouchesFile, inspect_lhe

# an input file with more events that cannot be read than this fraction is refused (damaged as a whole?);
# up to it, they are skipped, counted and named on the terminal and in the sidecar
MAX_SKIPPED_FRACTION = 0.01
# two files of one run whose cross sections differ by more than this many standard deviations (XERRUP,
# the GenCrossSection's error) and this fraction are slices of a process, not parts of one sample
SLICE_SIGMAS, SLICE_FRACTION = 5.0, 1e-3


def inspect_inputs(kind, paths, btag_labels=True, xsec_given=False):
    """The checked input files of a run (``kind`` "lhe" or "hepmc"); beams must agree between them,
    HepMC3 files must carry a cross section unless ``xsec_given`` (--xsec-fb) and their records the
    decayed hadrons unless ``btag_labels`` is False; no file given twice, no file with more unreadable
    events than MAX_SKIPPED_FRACTION, and cross sections that agree (else they are slices) unless
    ``xsec_given``."""
    inspect = inspect_lhe if kind == "lhe" else inspect_hepmc
    files = [inspect(path) for path in paths]
    for item in files:
        _check_skipped(item)
        if kind == "hepmc" and item.xsec_pb is None and not xsec_given:
            raise GenerationError(f"{item.path}: holds no cross section (no GenCrossSection); pass --xsec-fb")
        if btag_labels and not getattr(item, "has_hadron_record", True):
            raise GenerationError(
                f"{item.path}: its event record holds no decayed hadrons, so the b-tag labels (B and C hadrons "
                "near each jet) cannot be made; pass --no-btag-labels to proceed with every jet labelled light"
            )
    first = files[0]
    for other in files[1:]:
        if sorted(other.beam_energies_gev) != sorted(first.beam_energies_gev):
            raise GenerationError(
                f"{other.path}: beam energies {other.beam_energies_gev} GeV differ from those of {first.path} "
                f"{first.beam_energies_gev} GeV: one run takes files of one collider setting"
            )
    _check_duplicates(files)
    if not xsec_given:
        _check_one_cross_section(files)
    return files


def skipped_summary(item):
    """{why: events} of the events of an input file that cannot be read (they are skipped)."""
    skipped = {}
    for _, why in item.malformed:
        skipped[why] = skipped.get(why, 0) + 1
    if getattr(item, "n_unreadable", 0):
        skipped[UNREADABLE_HEPMC] = item.n_unreadable
    return skipped


def describe_skipped(item):
    """One line: how many events of the file are skipped and why (None when none is)."""
    skipped = skipped_summary(item)
    if not skipped:
        return None
    first = [str(index) for index, _ in item.malformed[:5]]
    where = f" (events {', '.join(first)}{', ...' if len(item.malformed) > 5 else ''})" if first else ""
    reasons = "; ".join(f"{n} {why}" for why, n in skipped.items())
    return f"{item.path}: {sum(skipped.values())} of {item.n_events} events cannot be read and are skipped{where}: {reasons}"


def _check_skipped(item):
    n_skipped = sum(skipped_summary(item).values())
    if n_skipped > MAX_SKIPPED_FRACTION * item.n_events:
        raise GenerationError(f"{describe_skipped(item)}; more than {MAX_SKIPPED_FRACTION:.0%} of the file: damaged? "
                              "repair or regenerate it")


def _check_duplicates(files):
    seen = {}
    for item in files:
        if item.sha256 in seen:
            raise GenerationError(f"{item.path}: the same content as {seen[item.sha256]} (sha256 {item.sha256[:16]}...): "
                                  "its events would be written twice; give each input file once")
        seen[item.sha256] = item.path


def _check_one_cross_section(files):
    """The files of a run are one sample: their cross sections agree within their errors. Slices of a
    process (HT or pT bins) would each need their own normalisation, which a sample does not have."""
    first = files[0]
    for other in files[1:]:
        if first.xsec_pb is None or other.xsec_pb is None:
            continue
        difference = abs(other.xsec_pb - first.xsec_pb)
        tolerance = max(SLICE_SIGMAS * math.hypot(first.xsec_error_pb, other.xsec_error_pb),
                        SLICE_FRACTION * max(first.xsec_pb, other.xsec_pb))
        if difference > tolerance:
            raise GenerationError(
                f"{other.path}: cross section {other.xsec_pb:.6g} pb differs from the {first.xsec_pb:.6g} pb of "
                f"{first.path}: slices of a process (HT or pT bins) are not one sample, whose yield is normalised to "
                "one cross section x acceptance (docs/generation.md); generate each slice in its own run, or pass "
                "--xsec-fb if the files are parts of one sample")


def prepare_inputs(config):
    """(config with the number of events of each input file, the checked input files, each Les Houches
    file with the merging it gets); (config, None) for Pythia's own processes. The input files are
    checked (readable, complete, same beams, merging determined) before any event is made."""
    if not config.inputs:
        return config, None
    inputs = inspect_inputs(config.input_format, config.inputs, not config.no_btag_labels, config.xsec_fb is not None)
    if config.input_format == "lhe":
        inputs = [replace(item, merging=plan_merging(item.path, item.madgraph, config.merging, config.merging_scale,
                                                     config.merging_process)) for item in inputs]
    counts = tuple(item.n_events for item in inputs)
    if config.events > sum(counts):
        raise GenerationError(f"--events {config.events}: the input files hold {sum(counts)} events")
    return replace(config, input_events=counts, input_sha256=tuple(item.sha256 for item in inputs)), inputs



def input_summary(item, event_range=None):
    """The JSON sidecar's record of an input file (and of the chunk's range of its events)."""
    fields = {"file": str(Path(item.path).resolve()), "sha256": item.sha256,
              "beam_energies_gev": list(item.beam_energies_gev), "xsec_pb": item.xsec_pb,
              "xsec_error_pb": item.xsec_error_pb, "n_events": item.n_events,
              "n_negative_weights": item.n_negative_weights}
    if event_range is not None:
        fields["event_range"] = list(event_range)
    if isinstance(item, LesHouchesFile):
        fields.update(beam_ids=list(item.beam_ids), weight_strategy=item.weight_strategy)
    else:
        fields.update(has_hadron_record=item.has_hadron_record)
    return fields

