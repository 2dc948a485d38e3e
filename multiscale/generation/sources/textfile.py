"""Input files as text, compressed or not."""

import bz2
import gzip
import lzma

_COMPRESSED = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ": lzma.open}


def open_text(path):
    """A text file, gzip, bzip2 or xz compressed or not (told by its first bytes, not its name)."""
    with open(path, "rb") as handle:
        head = handle.read(6)
    opener = next((opener for magic, opener in _COMPRESSED.items() if head.startswith(magic)), open)
    return opener(path, "rt", errors="replace")
