"""The source of one chunk of a run: Pythia's built-in process, or the chunk's range of events of a
checked input file (``RunConfig.input_ranges``), read from a slice file when the range is not the
whole file (slices.py)."""

from pathlib import Path

from .. import slices
from .hepmc import HepMCSource
from .lhe import LesHouchesSource
from .pythia import PythiaSource
from .textfile import open_text


def open_source(config, chunk, seed, inputs):
    """The source of chunk ``chunk``: built-in Pythia, or its range of events of a checked input file
    (``config.input_ranges()``), read from a slice file when the range is not the whole file."""
    if config.input_format == "pythia":
        return PythiaSource.builtin(config, seed)
    index, start, stop = config.input_ranges()[chunk]
    item = inputs[index]
    path = slice_file = None
    if (start, stop) != (0, item.n_events):
        target = slices.slice_path(config.outdir, config.file_stem(chunk))
        with open_text(item.path) as text:
            path = slice_file = slices.write_slice(config.input_format, item.path, text, start, stop, target)
    try:
        if config.input_format == "lhe":
            return LesHouchesSource(item, seed, path, slice_file, (start, stop))
        return HepMCSource(item, path, slice_file, stop - start)
    except BaseException:
        if slice_file is not None:
            Path(slice_file).unlink(missing_ok=True)
        raise


def chunk_input(config, chunk, inputs):
    """(input file, (first event, end event)) of chunk ``chunk`` of an LHE or HepMC3 run."""
    index, start, stop = config.input_ranges()[chunk]
    return inputs[index], (start, stop)
