"""ROOT output: one TTree per file (uproot ``mktree`` + ``extend``, LZ4) and a JSON sidecar.

Both files are written under a temporary name in the target directory and renamed when
complete, so an interrupted run never leaves a truncated file behind.
"""

import hashlib
import json
import os
import re
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from ..schema import FATJET_PREFIXES, TREE_NAME

# jagged branches sharing one counter: "<group>_<field>" with counter "n<group>" (uproot's naming)
JAGGED_GROUPS = tuple(f"{prefix}_part" for prefix in FATJET_PREFIXES) + ("obj",)
ENTRIES_PER_BASKET = 2000
LZ4_LEVEL = 4


def group_jagged(columns):
    """Zip the jagged columns of each group into one record array, so they share a counter."""
    grouped = {}
    members = {group: {} for group in JAGGED_GROUPS}
    for name, values in columns.items():
        group = next((g for g in JAGGED_GROUPS if name.startswith(g + "_")), None)
        if group is None:
            grouped[name] = np.asarray(values)
        else:
            members[group][name[len(group) + 1 :]] = values
    for group, fields in members.items():
        if fields:
            grouped[group] = ak.zip(fields)
    return grouped


def _atomic_path(path):
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def remove_partial(outdir, stems):
    """Delete temporary files that killed writers of the files ``stems`` left in ``outdir``."""
    for stem in stems:
        for leftover in Path(outdir).glob(f".{stem}.*.tmp"):
            leftover.unlink(missing_ok=True)


def remove_stale(outdir, run):
    """Delete the temporary files (``.<run>_<chunk>.<what>.<pid>.tmp``: output being written, input
    slices) that runs of ``run`` killed outright (SIGKILL, a crash) left in ``outdir``: those whose
    process is gone. A live process's are its own, e.g. a parallel ``--chunks`` job's. Returns them."""
    pattern = re.compile(rf"\.{re.escape(run)}(_\d+\.(root|json|input)|\.manifest\.json)\.(\d+)\.tmp")
    removed = []
    for path in Path(outdir).glob(f".{run}[_.]*.tmp"):
        match = pattern.fullmatch(path.name)
        if match and not _alive(int(match.group(3))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def file_sha256(path, block=1 << 20):
    """The hex SHA-256 of a file's bytes (what ``sha256sum`` prints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def write_root(path, columns):
    """Write ``columns`` (branch name -> array, one entry per event) as the Events TTree."""
    path = Path(path)
    branches = group_jagged(columns)
    n_entries = len(next(iter(branches.values())))
    types = {name: (values.type.content if isinstance(values, ak.Array) else values.dtype) for name, values in branches.items()}
    tmp = _atomic_path(path)
    try:
        with uproot.recreate(tmp, compression=uproot.LZ4(LZ4_LEVEL)) as out:
            tree = out.mktree(TREE_NAME, types)
            for start in range(0, n_entries, ENTRIES_PER_BASKET):
                tree.extend({name: values[start : start + ENTRIES_PER_BASKET] for name, values in branches.items()})
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path, content):
    path = Path(path)
    tmp = _atomic_path(path)
    try:
        tmp.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()

