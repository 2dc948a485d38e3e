"""Resumable, idempotent runs: which chunks of a run are already on disk, and the manifest.

A run writes its chunks (``<run>_<c>.root`` + ``.json`` sidecar, each atomically), then LAST the
manifest ``<run>.manifest.json`` (the run's settings and files), ``<run>`` being
``<process>[_mH<mH>]_<seed>``. A rerun with the same settings then

- finds a complete manifest: nothing to do;
- finds some chunks whose sidecar holds the same settings (and the Pythia seed this code derives):
  keeps them and generates the others (a chunk depends only on the settings and its index);
- finds a manifest or a sidecar with other settings: stops with an error naming that file, so
  that two runs are never mixed in one sample. The settings hold the content hash (SHA-256) of
  every input file: an input replaced by another file, even one of as many events, is another run.

A ``.root`` without its sidecar (killed between the two renames), or whose bytes are not those its
sidecar records (``file_sha256``: truncated, overwritten), is regenerated.
"""

import json
import sys
from dataclasses import MISSING, asdict, fields
from pathlib import Path

from ..schema import TREE_NAME, run_stem
from .pythia_setup import GenerationError
from .writer import file_sha256, write_json

# settings that do not change the events: the same run may be resumed with others
NEUTRAL_SETTINGS = ("jobs", "outdir", "chunks")
# settings added to RunConfig after files were written whose default is NOT what those files were made
# with: the value such files carry (the b-tag labels of every jet within dR < 0.3 of a hadron)
LEGACY_SETTINGS = {"flavour_labelling": "every-jet-dR0.3"}


class ManifestError(GenerationError):
    """Files of another run (other settings) are where this run would write."""


def run_name(config):
    """``<process>[_mH<mH>]_<seed>``: the file stem of chunk c without its ``_<c>``."""
    return run_stem(config.file_stem(0))


def manifest_path(config):
    return Path(config.outdir) / f"{run_name(config)}.manifest.json"


def run_settings(settings):
    """The settings that define the events, JSON-normalised (tuples become lists, as in a sidecar)."""
    settings = dict(settings) if isinstance(settings, dict) else asdict(settings)
    return json.loads(json.dumps({k: v for k, v in settings.items() if k not in NEUTRAL_SETTINGS}))


def _differences(found, wanted):
    keys = [k for k in sorted(set(found) | set(wanted)) if found.get(k) != wanted.get(k)]
    return ", ".join(f"{k} {_short(found.get(k, 'absent'))} (now {_short(wanted.get(k, 'absent'))})" for k in keys)


def _short(value, width=80):
    """A setting for a one-line message: content hashes and long lists cut."""
    text = str(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _require_same_settings(path, settings, config):
    wanted = run_settings(config)
    # a setting added to RunConfig after the files were written: they were made with its default
    defaults = {**run_settings({f.name: f.default for f in fields(config) if f.default is not MISSING}),
                **LEGACY_SETTINGS}
    found = {**{k: v for k, v in defaults.items() if k not in settings}, **run_settings(settings)}
    diff = _differences(found, wanted)
    if diff:
        raise ManifestError(
            f"{path}: written with other settings: {diff}; delete the files of run {run_name(config)} "
            f"or choose another --outdir or --seed"
        )


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path}: unreadable ({error})") from error


def _chunk_files(config):
    """chunk index -> .root path, for the files of this run's name found in the outdir."""
    prefix = run_name(config) + "_"
    found = {}
    for path in Path(config.outdir).glob(f"{prefix}*.root"):
        index = path.stem[len(prefix):]
        if index.isdigit():
            found[int(index)] = path
    return found


def kept_chunks(config, expected_pythia_seed):
    """chunk -> summary (its sidecar) of the chunks already written by this very run.

    ``expected_pythia_seed(chunk)`` is the Pythia seed this code gives the chunk: a sidecar with
    another one was made by another seeding scheme. Raises ManifestError on any mismatch.
    """
    path = manifest_path(config)
    if path.exists():
        _require_same_settings(path, _read_json(path).get("settings", {}), config)
    kept = {}
    for chunk, root in sorted(_chunk_files(config).items()):
        sidecar = root.with_suffix(".json")
        if not sidecar.exists():
            continue  # killed between the .root and the .json: regenerated
        summary = _read_json(sidecar)
        _require_same_settings(sidecar, summary.get("settings", {}), config)
        if summary.get("pythia_seed") != expected_pythia_seed(chunk):
            raise ManifestError(
                f"{sidecar}: chunk {chunk} was generated with Pythia seed {summary.get('pythia_seed')}, this "
                f"version derives another (older seeding scheme?); delete the files of run {run_name(config)}"
            )
        problem = damage(root, summary)
        if problem:
            print(f"{root}: {problem}: regenerated", file=sys.stderr)
            continue
        kept[chunk] = summary
    return kept


def damage(root, summary):
    """Why the chunk file ``root`` is not the one its sidecar ``summary`` describes (None if it is): its
    bytes differ from the recorded SHA-256, or, for a sidecar without one, it cannot be opened or holds
    another number of events."""
    if "file_sha256" in summary:
        if file_sha256(root) != summary["file_sha256"]:
            return "its bytes differ from those its sidecar records (truncated or overwritten?)"
        return None
    try:
        import uproot

        with uproot.open(root) as opened:
            entries = opened[TREE_NAME].num_entries
    except Exception as error:  # a truncated file fails here
        return f"cannot be read ({type(error).__name__}): truncated?"
    if entries != summary.get("n_accepted"):
        return f"holds {entries} events, its sidecar {summary.get('n_accepted')}"
    return None


def is_complete(config, kept):
    """A manifest with these settings exists and every chunk is on disk."""
    return manifest_path(config).exists() and len(kept) == config.n_chunks


def write_manifest(config, summaries):
    """Written last, when every chunk is on disk: marks the run complete."""
    write_json(manifest_path(config), {
        "run": run_name(config),
        "settings": run_settings(config),
        "files": [s["file"] for s in summaries],
        "n_accepted": sum(s["n_accepted"] for s in summaries),
        "n_generated": sum(s["n_generated"] for s in summaries),
    })
