"""ROOT output: one TTree per file (uproot ``mktree`` + ``extend``, LZ4) and a JSON sidecar.

Both files are written under a temporary name in the target directory and renamed when
complete, so an interrupted run never leaves a truncated file behind.
"""

import json
import os
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

